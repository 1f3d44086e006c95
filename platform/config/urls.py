"""URL map: UI pages, the REST API under /api/v1/, schema and docs, health, admin."""
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views as core_views
from core.registry import suite_urlpatterns

api_v1 = [
    path("", include("core.api.urls")),
    *suite_urlpatterns(api=True),  # /api/v1/<app>/ for every suite app (core.registry)
]

urlpatterns = [
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("api/v1/", include((api_v1, "api-v1"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/login/", core_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", core_views.logout_view, name="logout"),
    *suite_urlpatterns(),  # /<app>/ pages (and extra root URLs such as /dicomweb/) of every suite app
    path("", include("core.urls")),
]

handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"
