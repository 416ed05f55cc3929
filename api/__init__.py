"""The FastAPI service: personalized items and query suggestions from the active model."""
