"""Default settings: the sandbox and development. Production is `platform_site.settings.production`."""

from .base import *  # noqa: F401,F403
