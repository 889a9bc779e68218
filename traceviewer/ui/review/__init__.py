"""Human review: assessments of a trace, the review queue and the outbox that sends them."""
