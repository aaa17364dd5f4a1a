from django.contrib import admin
from django.urls import include, path, re_path

from platform_site.api.errors import api_route_not_found

urlpatterns = [
    path("", include("console.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("invitations/", include("invitations.urls")),
    path("idle/", include("idle.urls")),
    path("api/v1/", include("platform_site.api.urls")),
    re_path(r"^api/", api_route_not_found),
]

# Under /api/ every error, including those Django answers itself, is the JSON envelope.
handler400 = "platform_site.api.errors.handler400"
handler403 = "platform_site.api.errors.handler403"
handler404 = "platform_site.api.errors.handler404"
handler500 = "platform_site.api.errors.handler500"
