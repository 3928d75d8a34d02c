"""Evaluation: answers of base and fine-tuned models, LLM judges, scores."""
