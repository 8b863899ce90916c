from django.urls import path

from liquidity.apis import LiquidUniverseApi

urlpatterns = [
    path("liquid-universe", LiquidUniverseApi.as_view(), name="oi-liquid-universe"),
]
