"""Reconciliation poller for shopping carts (Shopify, WooCommerce): fetches orders updated since a cursor."""
