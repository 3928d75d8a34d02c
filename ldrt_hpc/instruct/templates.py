"""The paper's pairing of a description with one of the 20 template questions: TF-IDF cosine similarity."""

from __future__ import annotations


class TemplateMatcher:
    """Pairs a description with the template question whose TF-IDF vector is most cosine-similar (as in the paper)."""

    def __init__(self, templates: list[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.templates = templates
        self.vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit(templates)
        self.matrix = self.vectorizer.transform(templates)

    def best(self, description: str) -> tuple[int, float]:
        from sklearn.metrics.pairwise import cosine_similarity

        scores = cosine_similarity(self.vectorizer.transform([description]), self.matrix)[0]
        index = int(scores.argmax())
        return index, float(scores[index])
