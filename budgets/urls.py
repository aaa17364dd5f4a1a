"""The money routes, mounted under /api/v1/ by platform_site/api/urls.py."""

from budgets.api.costs import urlpatterns as cost_urls
from budgets.api.digest import urlpatterns as digest_urls
from budgets.api.pools import urlpatterns as pool_urls

urlpatterns = [*pool_urls, *cost_urls, *digest_urls]
