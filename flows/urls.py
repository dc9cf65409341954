from django.urls import path

from flows.views import overview

urlpatterns = [
    path("", overview.overview_page, name="overview"),
    path("overview/status", overview.overview_status, name="overview-status"),
]
