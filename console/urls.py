"""The browser console's pages. Each page module owns its routes (`urlpatterns`); this file only gathers them."""

from console.views import home, launch, organization, project, tokens, workspace

app_name = "console"

urlpatterns = [
    *home.urlpatterns,
    *launch.urlpatterns,
    *workspace.urlpatterns,
    *project.urlpatterns,
    *organization.urlpatterns,
    *tokens.urlpatterns,
]
