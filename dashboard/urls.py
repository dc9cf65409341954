from django.urls import include, path

urlpatterns = [
    path("accounts/", include("flows.urls_accounts")),
    path("", include("flows.urls")),
]
