import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")

application = get_wsgi_application()

# Load every view, serializer and schema module now rather than on the first request, then move the objects
# loaded so far (modules, classes, settings: about 150,000, kept for the process's life) out of the garbage
# collector's sight. Otherwise every full collection walks them all again while a request waits; measured
# with bench/lists, the collector's time per request halves (0.8 to 0.4 ms for a page of 100 workspaces).
get_resolver().url_patterns  # noqa: B018 (imports the URLconf and every view module)
gc.collect()
gc.freeze()
