from django.shortcuts import render

from core.auth import role_required


@role_required("medical")
def index(request):
    return render(request, "core/app_placeholder.html", {"app": "medical"})
