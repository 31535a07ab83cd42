from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def terminal(request):
    return render(request, "not_yet.html", {"feature": "Terminal", "nav": "terminal"})
