"""The event bus seen from the services: events on channels, the outbox."""
