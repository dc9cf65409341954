"""Sign-in: Django's auth views, plus the one-time login link printed by `manage.py serve`."""

from django.urls import include, path

from flows.views import login_link

urlpatterns = [
    path("link/<str:token>/", login_link.redeem, name="login-link"),
    path("", include("django.contrib.auth.urls")),
]
