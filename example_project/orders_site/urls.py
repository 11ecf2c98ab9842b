from __future__ import annotations

from django.urls import path
from orders import views

urlpatterns = [
    path("", views.index, name="index"),
    path("health/", views.health, name="health"),
    path("orders/", views.order_list, name="order-list"),
    path("orders/fetch/", views.fetch_orders, name="order-fetch"),
    path("orders/<str:external_id>/", views.order_detail, name="order-detail"),
    path("orders/<str:external_id>/ship/", views.ship_order, name="order-ship"),
    path("demo/slow/", views.slow, name="demo-slow"),
    path("demo/block/", views.block, name="demo-block"),
    path("demo/blocking-events/", views.blocking_events, name="demo-blocking-events"),
]
