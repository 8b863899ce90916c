from django.urls import path

from dashboard.views import open_interest_debug_view

urlpatterns = [
    path("open-interest", open_interest_debug_view, name="debug-open-interest"),
]
