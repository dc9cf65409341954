from django.urls import path

from flows.views import overview
from flows.views import topology as topology_views

urlpatterns = [
    path("", overview.overview_page, name="overview"),
    path("overview/status", overview.overview_status, name="overview-status"),
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
