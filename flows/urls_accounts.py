"""Sign-in and sign-out, plus the one-time login link printed by `manage.py serve`.

Only these of Django's auth views: the password reset and change views need templates and
an e-mail set-up this dashboard does not have (accounts are made with `manage.py`).
"""

from django.contrib.auth.views import LogoutView
from django.urls import path

from flows.views import login_link
from flows.views.sign_in import SignInView

urlpatterns = [
    path("link/<str:token>/", login_link.redeem, name="login-link"),
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
]
