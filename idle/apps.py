from django.apps import AppConfig


class IdleConfig(AppConfig):
    name = "idle"
    verbose_name = "Idle detection"
    default_auto_field = "django.db.models.BigAutoField"
