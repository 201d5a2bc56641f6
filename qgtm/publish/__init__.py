"""The publisher service: tiers, delays, subscriber feed and chat/email delivery.

It runs on its own host and imports only `qgtm.core` and third-party libraries.
"""
