from django.apps import AppConfig
from django.db.backends.signals import connection_created


class PlatformSiteConfig(AppConfig):
    name = "platform_site"
    verbose_name = "Carrel platform"

    def ready(self) -> None:
        from platform_site.pg import use_compiled_timestamp_loader

        connection_created.connect(use_compiled_timestamp_loader, dispatch_uid="carrel-compiled-timestamps")
