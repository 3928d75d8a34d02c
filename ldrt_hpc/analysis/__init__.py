"""Analysis of the evaluation: Table 1 statistics, hallucination metrics, the report."""
