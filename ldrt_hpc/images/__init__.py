"""Image measures used to decide which figure crops can train a vision-language model."""
