"""Billing: plans, Stripe checkout and webhooks, subscriptions as events (issue: billing)."""
