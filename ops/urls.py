from django.urls import path

from ops.apis import OpsEventListApi

urlpatterns = [
    path("events", OpsEventListApi.as_view(), name="ops-events"),
]
