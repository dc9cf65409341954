from django.urls import path

from flows.views import overview, publish, publish_api
from flows.views import topology as topology_views

urlpatterns = [
    path("", overview.overview_page, name="overview"),
    path("overview/status", overview.overview_status, name="overview-status"),
    # --- publishing ---
    path("publish/", publish.publish_page, name="publish"),
    path("publish/send", publish.publish_submit, name="publish-submit"),
    path("publish/runs/<str:run_id>", publish.run_progress, name="publish-run"),
    path("publish/runs/<str:run_id>/cancel", publish.run_cancel, name="publish-run-cancel"),
    path("publish/templates/save", publish.template_save, name="publish-template-save"),
    path(
        "publish/templates/<int:template_id>/publish",
        publish.template_publish,
        name="publish-template-publish",
    ),
    path(
        "publish/templates/<int:template_id>/delete",
        publish.template_delete,
        name="publish-template-delete",
    ),
    path("api/publish", publish_api.api_publish, name="api-publish"),
    path("api/publish/runs/<str:run_id>", publish_api.api_run, name="api-publish-run"),
    path(
        "api/publish/runs/<str:run_id>/cancel",
        publish_api.api_run_cancel,
        name="api-publish-run-cancel",
    ),
    path("topology/", topology_views.topology_page, name="topology"),
    path("api/topology", topology_views.api_topology, name="api-topology"),
    path("api/route", topology_views.api_route, name="api-route"),
]

# --- live page (issue 6) ---
from flows.views import live  # noqa: E402

urlpatterns += [
    path("live/", live.live_page, name="live"),
    path("live/details", live.live_details, name="live-details"),
    path("live/consumption", live.live_consumption, name="live-consumption"),
]
