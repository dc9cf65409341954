from django.urls import path

from flows.views import overview

urlpatterns = [
    path("", overview.overview_page, name="overview"),
    path("overview/status", overview.overview_status, name="overview-status"),
]

# --- live page (issue 6) ---
from flows.views import live  # noqa: E402

urlpatterns += [
    path("live/", live.live_page, name="live"),
    path("live/details", live.live_details, name="live-details"),
    path("live/consumption", live.live_consumption, name="live-consumption"),
]
