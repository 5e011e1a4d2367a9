"""Webhooks: change events delivered to subscribers from a durable outbox"""
