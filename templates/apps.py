from django.apps import AppConfig


class TemplatesConfig(AppConfig):
    """The workspace-template catalog (not the HTML templates folder)."""

    name = "templates"
    label = "workspace_templates"
    verbose_name = "Workspace templates"
