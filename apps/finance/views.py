from django.shortcuts import render

from core.auth import role_required


@role_required("finance")
def index(request):
    return render(request, "core/app_placeholder.html", {"app": "finance"})
