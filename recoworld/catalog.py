"""The item catalogue: topic, latent α, embedding, popularity, duration, text and semantic id per item.

A :class:`Catalog` is built deterministically from a HYDRA world (or from raw ``alpha`` and ``popularity``
arrays) and a seed. Besides the per-item attributes it carries the index structures the simulator's retrieval
stage needs: items grouped by topic with per-topic popularity CDFs, and a global popularity CDF.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TOPIC_VOCABULARY", "Catalog", "kmeans", "residual_kmeans", "topic_vocabulary"]

# One topic per line, "name: keyword, ...": at least 64 distinct readable topics, most distinct first.
_VOCABULARY_TEXT = """
cooking: pasta, quick dinners, knife skills, baking bread, street food, one-pot meals
football: free kicks, derby days, transfer news, goalkeeping, tactics, world cup
jazz: bebop, piano trios, saxophone solos, jazz standards, big bands, improvisation
gaming: speedruns, boss fights, indie games, retro consoles, strategy games, esports
fitness: home workouts, running form, kettlebells, stretching, strength training, hiit
travel: backpacking, city guides, night trains, island hopping, road trips, hidden beaches
science: black holes, quantum physics, evolution, chemistry experiments, the brain, volcanoes
comedy: stand-up, sketches, pranks, improv, parodies, roast battles
fashion: streetwear, thrift finds, capsule wardrobes, sneakers, runway looks, tailoring
pets: puppies, cat antics, dog training, aquariums, parrots, rescue animals
finance: index funds, budgeting, crypto, retirement, side hustles, taxes
diy: woodworking, home repairs, upcycling, power tools, tiny houses, garden sheds
history: ancient rome, world war two, the vikings, lost cities, empires, the cold war
basketball: dunks, three-pointers, playoffs, street ball, buzzer beaters, draft picks
classical music: symphonies, violin concertos, opera, baroque, piano sonatas, conductors
technology: smartphones, gadgets, laptops, open source, ai tools, home labs
gardening: tomatoes, houseplants, composting, raised beds, succulents, pruning
cars: supercars, restorations, electric cars, track days, engine swaps, road tests
art: watercolour, oil painting, sketchbooks, street art, sculpture, portraits
movies: film reviews, trailers, directors, cult classics, behind the scenes, plot twists
hip hop: freestyles, beat making, lyric breakdowns, old school, producers, cyphers
tennis: grand slams, serves, rallies, clay courts, backhands, tiebreaks
photography: street photos, film cameras, lighting, landscapes, editing, lenses
parenting: toddlers, bedtime routines, school lunches, teen years, family games, newborns
beauty: skincare, makeup looks, hair care, nail art, fragrances, routines
space: rocket launches, mars, the moon, telescopes, astronauts, exoplanets
rock music: guitar riffs, live sets, drum solos, classic albums, power ballads, garage bands
baking: sourdough, layer cakes, croissants, cookies, pie crusts, cake decorating
cycling: tour stages, mountain biking, bike repairs, gravel rides, bikepacking, track cycling
anime: shonen, studio ghibli, openings, mecha, slice of life, manga adaptations
programming: python, web apps, algorithms, debugging, rust, system design
nature: wildlife, forests, rivers, birdwatching, national parks, the ocean
true crime: cold cases, heists, courtroom drama, detectives, mysteries, con artists
chess: openings, endgames, blitz games, grandmasters, puzzles, famous blunders
yoga: morning flows, breathing, balance poses, meditation, flexibility, restorative yoga
architecture: skyscrapers, brutalism, cabins, cathedrals, modern homes, bridges
electronic music: techno, synthesizers, house music, dj sets, ambient, drum and bass
languages: spanish, japanese, grammar, slang, accents, language hacks
hiking: mountain trails, camping, thru-hikes, survival skills, gear reviews, summits
politics: elections, debates, policy, campaigns, parliament, local news
cricket: test matches, sixes, spin bowling, run chases, the ashes, fielding
coffee: espresso, latte art, pour-over, roasting, cafes, cold brew
wine: tastings, vineyards, pairings, natural wine, sommeliers, cellars
books: book reviews, classics, fantasy novels, reading lists, authors, poetry
boxing: knockouts, title fights, training camps, footwork, sparring, weigh-ins
magic: card tricks, illusions, street magic, mentalism, sleight of hand, escapes
dance: choreography, ballet, breakdance, salsa, tap, dance battles
economics: inflation, markets, trade, housing, central banks, recessions
motorsport: formula one, rally, pit stops, overtakes, qualifying, endurance races
health: sleep, nutrition, mental health, posture, healthy habits, hydration
crafts: knitting, pottery, embroidery, paper crafts, candle making, crochet
country music: ballads, honky-tonk, songwriters, fiddles, nashville, road songs
board games: strategy, party games, tabletop rpgs, card games, co-op games, game nights
fishing: fly fishing, ice fishing, lures, big catches, river fishing, boats
ocean: coral reefs, sharks, whales, deep sea, sailing, surfing
interior design: small spaces, room makeovers, lighting design, minimalism, colour palettes, furniture
philosophy: stoicism, ethics, existentialism, thought experiments, free will, logic
skateboarding: kickflips, skate parks, street skating, vert ramps, board setups, slams
news: headlines, explainers, interviews, investigations, world news, fact checks
podcasts: interviews, storytelling, roundtables, deep conversations, q and a, live shows
mathematics: prime numbers, geometry, probability, puzzles, infinity, proofs
weather: storms, tornadoes, forecasts, heatwaves, snow days, climate
golf: drives, putting, majors, course tours, swing tips, hole in ones
volleyball: spikes, beach volleyball, blocks, serves, rallies, digs
pop music: chart hits, music videos, covers, pop stars, live vocals, dance tracks
minimalism: decluttering, tiny homes, slow living, digital detox, capsule living, routines
vlogs: day in the life, morning routines, city life, moving house, study with me, diaries
animation: stop motion, cartoons, pixel art, 3d animation, short films, storyboards
education: study tips, exam prep, lectures, note taking, online courses, memory tricks
food reviews: burgers, ramen, pizza, taste tests, fine dining, hidden gems
esports: tournaments, pro players, clutch plays, team fights, grand finals, rankings
horror: ghost stories, haunted houses, creepy pasta, slashers, urban legends, jump scares
"""
TOPIC_VOCABULARY: tuple[tuple[str, tuple[str, ...]], ...] = tuple(
    (name.strip(), tuple(k.strip() for k in kws.split(",")))
    for name, kws in (line.split(":") for line in _VOCABULARY_TEXT.strip().splitlines())
)
_TITLE_WORDS = """
Ultimate|Quick|Beginner's|Hidden|Classic|Late-Night|Essential|Surprising|Everyday|Advanced|Five-Minute|Weekend
Underrated|Legendary|Simple|Honest|Modern|Wild|Tiny|Epic|Weeknight|Unexpected|Perfect|Lazy
--
Tricks|Guide|Highlights|Explained|Tips|Challenge|Breakdown|Moments|Secrets|Basics|Mistakes|Deep Dive
Stories|Hacks|Review|Compilation|Myths|Masterclass|Diaries|Rankings
"""
_ADJECTIVES, _FORMATS = (
    tuple(w for line in part.strip().splitlines() for w in line.split("|"))
    for part in _TITLE_WORDS.split("--")
)


def topic_vocabulary(num_topics: int) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Names and keywords for ``num_topics`` topics; past the vocabulary, names get a number suffix."""
    size = len(TOPIC_VOCABULARY)
    names, keywords = [], []
    for k in range(num_topics):
        name, kws = TOPIC_VOCABULARY[k % size]
        names.append(name if k < size else f"{name} {k // size + 1}")
        keywords.append(kws)
    return tuple(names), tuple(keywords)


def _sq_dist(x: np.ndarray, sq: np.ndarray, c: np.ndarray) -> np.ndarray:
    # einsum, not BLAS: small products are faster single-threaded and bitwise reproducible
    return sq[:, None] - 2.0 * np.einsum("ij,kj->ik", x, c) + np.einsum("ij,ij->i", c, c)[None, :]


def kmeans(
    x: np.ndarray, k: int, rng: np.random.Generator, max_iter: int = 30, max_fit: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic Lloyd k-means with k-means++ initialisation; returns (centroids (k, d), labels (n,)).

    Centroids are fitted on at most ``max_fit`` points drawn with ``rng``; every point is then assigned.
    """
    x_all = np.asarray(x, dtype=np.float64)
    n_all = x_all.shape[0]
    x = x_all[np.sort(rng.choice(n_all, max_fit, replace=False))] if n_all > max_fit else x_all
    n = x.shape[0]
    k = int(min(k, n))
    if k <= 0:
        return np.zeros((0, x.shape[1])), np.zeros(n_all, dtype=np.int64)
    sq = np.einsum("ij,ij->i", x, x)
    centroids = np.empty((k, x.shape[1]))
    centroids[0] = x[rng.integers(n)]
    d2 = np.maximum(_sq_dist(x, sq, centroids[:1])[:, 0], 0.0)
    for j in range(1, k):
        total = d2.sum()
        idx = rng.choice(n, p=d2 / total) if total > 0 else int(rng.integers(n))
        centroids[j] = x[idx]
        d2 = np.minimum(d2, np.maximum(_sq_dist(x, sq, centroids[j : j + 1])[:, 0], 0.0))
    labels = np.full(n, -1, dtype=np.int64)
    for _ in range(max_iter):
        dist = _sq_dist(x, sq, centroids)
        new = np.argmin(dist, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=k)
        sums = np.stack([np.bincount(labels, weights=col, minlength=k) for col in x.T], axis=1)
        nonempty = counts > 0
        centroids[nonempty] = sums[nonempty] / counts[nonempty, None]
        if not nonempty.all():  # re-seed empty clusters at the worst-fitted points, deterministically
            err = dist[np.arange(n), labels]
            worst = np.argsort(-err, kind="stable")[: int((~nonempty).sum())]
            centroids[~nonempty] = x[worst]
    if n_all > n:
        labels = np.argmin(_sq_dist(x_all, np.einsum("ij,ij->i", x_all, x_all), centroids), axis=1)
    return centroids, labels


def residual_kmeans(x: np.ndarray, levels: int, codes: int, rng: np.random.Generator) -> np.ndarray:
    """Residual-quantisation codes (n, levels): k-means on x, then on the residuals, and so on."""
    residual = np.asarray(x, dtype=np.float64).copy()
    out = np.zeros((residual.shape[0], levels), dtype=np.int64)
    for level in range(levels):
        centroids, labels = kmeans(residual, codes, rng)
        out[:, level] = labels
        residual -= centroids[labels]
    return out


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Catalog:
    """A frozen item catalogue with read-only arrays; build it with :meth:`from_world` or :meth:`from_arrays`.

    Attributes (m items, f topics, d embedding dims):
        alpha (m, f): latent topic weights; topic (m,): argmax α.
        embedding (m, d) float32: unit-norm item vectors (fixed random projection of α plus small noise) — the
            item space the recommender knows; ``projection`` (f, d) maps topic weights into it.
        popularity (m,), log_popularity (m,), duration (m,) minutes.
        title, description: tuples of m strings; semantic_id (m, levels): residual k-means codes.
        topic_names, topic_keywords (f,); related_topics (f, 3): the 3 most co-occurring other topics
            (cosine-normalised αᵀα; -1 pads when f < 4).
        items_by_topic (m,): items sorted by topic then descending popularity; topic_offsets (f + 1,);
            topic_popularity_cdf (m,): popularity CDF within each topic block (non-empty blocks end at 1.0).
        popular_items (m,): ids by descending popularity; popularity_cdf (m,): CDF aligned with popular_items.
    """

    alpha: np.ndarray
    topic: np.ndarray
    embedding: np.ndarray
    projection: np.ndarray
    popularity: np.ndarray
    log_popularity: np.ndarray
    duration: np.ndarray
    title: tuple[str, ...]
    description: tuple[str, ...]
    semantic_id: np.ndarray
    topic_names: tuple[str, ...]
    topic_keywords: tuple[tuple[str, ...], ...]
    related_topics: np.ndarray
    items_by_topic: np.ndarray
    topic_offsets: np.ndarray
    topic_popularity_cdf: np.ndarray
    popular_items: np.ndarray
    popularity_cdf: np.ndarray
    seed: int

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_world(cls, world: Any, seed: int = 0, **kwargs: Any) -> Catalog:
        """Build from a :class:`~recoworld.generators.hydra.HydraWorld` (its ``alpha`` and ``popularity``)."""
        return cls.from_arrays(world.alpha, world.popularity, seed=seed, **kwargs)

    @classmethod
    def from_arrays(
        cls,
        alpha: np.ndarray,
        popularity: np.ndarray,
        seed: int = 0,
        *,
        embedding_dim: int = 16,
        embedding_noise: float = 0.05,
        semantic_levels: int = 3,
        semantic_codes: int = 16,
        duration_median: float = 4.0,
        duration_sigma: float = 0.8,
        duration_range: tuple[float, float] = (0.25, 60.0),
        medium: str = "video",
    ) -> Catalog:
        """Build from ``alpha`` (m, f) non-negative topic weights and ``popularity`` (m,) positive levels."""
        alpha = np.asarray(alpha, dtype=np.float64)
        popularity = np.asarray(popularity, dtype=np.float64)
        if alpha.ndim != 2 or alpha.shape[0] == 0 or alpha.shape[1] == 0:
            raise ValueError(f"alpha must be a non-empty (num_items, num_attrs) array, got {alpha.shape}")
        m, f = alpha.shape
        if popularity.shape != (m,):
            raise ValueError(f"popularity must have shape ({m},), got {popularity.shape}")
        if not (np.all(np.isfinite(alpha)) and np.all(alpha >= 0)):
            raise ValueError("alpha must be finite and non-negative")
        if not (np.all(np.isfinite(popularity)) and np.all(popularity > 0)):
            raise ValueError("popularity must be finite and positive")
        if embedding_dim < 1 or semantic_levels < 1 or semantic_codes < 1:
            raise ValueError("embedding_dim, semantic_levels and semantic_codes must be >= 1")
        lo, hi = duration_range
        if not 0 < lo <= duration_median <= hi:
            raise ValueError(
                f"need 0 < duration_range[0] <= duration_median <= duration_range[1], "
                f"got {duration_range} and {duration_median}"
            )
        seed = int(seed)
        r_proj, r_noise, r_dur, r_text, r_sem = (
            np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
        )
        topic = np.argmax(alpha, axis=1).astype(np.int64)

        # embedding: fixed random projection of α (rows normalised) plus small isotropic noise, unit norm
        projection = r_proj.standard_normal((f, embedding_dim))
        projection /= np.linalg.norm(projection, axis=1, keepdims=True)
        weights = alpha / np.maximum(alpha.sum(axis=1, keepdims=True), 1e-300)
        emb = weights @ projection + embedding_noise * r_noise.standard_normal((m, embedding_dim))
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        emb = np.where(norms > 0, emb / np.maximum(norms, 1e-300), 1.0 / np.sqrt(embedding_dim))
        embedding = emb.astype(np.float32)

        # duration: log-normal around a per-topic median, clipped
        topic_shift = 0.3 * r_dur.standard_normal(f)
        log_dur = np.log(duration_median) + topic_shift[topic] + duration_sigma * r_dur.standard_normal(m)
        duration = np.clip(np.exp(log_dur), lo, hi)

        # topic relations: cosine-normalised co-occurrence αᵀα, self excluded, ties broken by topic index
        co = alpha.T @ alpha
        diag = np.sqrt(np.maximum(np.diag(co), 1e-300))
        sim = co / diag[:, None] / diag[None, :]
        np.fill_diagonal(sim, -np.inf)
        order = np.argsort(-sim, axis=1, kind="stable")[:, : min(3, f - 1)]
        related = np.full((f, 3), -1, dtype=np.int64)
        related[:, : order.shape[1]] = order

        # retrieval indexes
        ids = np.arange(m, dtype=np.int64)
        by_topic = np.lexsort((ids, -popularity, topic))
        offsets = np.zeros(f + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(np.bincount(topic, minlength=f))
        topic_sorted = topic[by_topic]
        csum = np.cumsum(popularity[by_topic])
        before = np.concatenate(([0.0], csum))[offsets[:-1]][topic_sorted]  # mass before each block
        totals = np.bincount(topic, weights=popularity, minlength=f)
        topic_cdf = (csum - before) / totals[topic_sorted]
        last = offsets[1:][np.diff(offsets) > 0] - 1
        topic_cdf[last] = 1.0
        popular = np.lexsort((ids, -popularity))
        pop_cdf = np.cumsum(popularity[popular]) / popularity.sum()
        pop_cdf[-1] = 1.0

        # semantic ids: residual k-means over the embeddings
        semantic_id = residual_kmeans(embedding, semantic_levels, semantic_codes, r_sem)

        names, keywords = topic_vocabulary(f)
        title, description = _texts(alpha, topic, duration, names, keywords, r_text, medium)
        return cls(
            alpha=_readonly(alpha.copy()),
            topic=_readonly(topic),
            embedding=_readonly(embedding),
            projection=_readonly(projection.astype(np.float32)),
            popularity=_readonly(popularity.copy()),
            log_popularity=_readonly(np.log(popularity)),
            duration=_readonly(duration),
            title=title,
            description=description,
            semantic_id=_readonly(semantic_id),
            topic_names=names,
            topic_keywords=keywords,
            related_topics=_readonly(related),
            items_by_topic=_readonly(by_topic.astype(np.int64)),
            topic_offsets=_readonly(offsets),
            topic_popularity_cdf=_readonly(topic_cdf),
            popular_items=_readonly(popular.astype(np.int64)),
            popularity_cdf=_readonly(pop_cdf),
            seed=seed,
        )

    # ------------------------------------------------------------------ helpers
    @property
    def num_items(self) -> int:
        return int(self.alpha.shape[0])

    @property
    def num_topics(self) -> int:
        return int(self.alpha.shape[1])

    @property
    def embedding_dim(self) -> int:
        return int(self.embedding.shape[1])

    @property
    def topic_sizes(self) -> np.ndarray:
        """Number of items per topic, shape (f,)."""
        return np.diff(self.topic_offsets)

    def project(self, weights: np.ndarray) -> np.ndarray:
        """Map topic weights (..., f) into the embedding space, unit norm (e.g. a user's topic histogram)."""
        v = np.asarray(weights, dtype=np.float64) @ self.projection.astype(np.float64)
        n = np.linalg.norm(v, axis=-1, keepdims=True)
        return (v / np.where(n > 0, n, 1.0)).astype(np.float32)

    def sample_popular(self, u: np.ndarray) -> np.ndarray:
        """Items drawn ∝ popularity by inverse CDF from uniforms ``u`` in [0, 1) (any shape)."""
        idx = np.searchsorted(self.popularity_cdf, np.asarray(u), side="right")
        return self.popular_items[np.minimum(idx, self.num_items - 1)]

    def sample_in_topics(self, topics: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Items drawn ∝ popularity within each given topic from uniforms ``u``; -1 where a topic is empty."""
        topics, u = np.broadcast_arrays(np.asarray(topics, dtype=np.int64), np.asarray(u, dtype=np.float64))
        start, end = self.topic_offsets[topics], self.topic_offsets[topics + 1]
        key = self._topic_key()
        idx = np.searchsorted(key, topics + u, side="right")
        idx = np.clip(idx, start, np.maximum(end - 1, start))
        return np.where(end > start, self.items_by_topic[np.minimum(idx, self.num_items - 1)], -1)

    def _topic_key(self) -> np.ndarray:
        key = self.__dict__.get("_key")
        if key is None:  # monotone search key: topic index + within-topic CDF
            key = self.topic[self.items_by_topic] + self.topic_popularity_cdf
            object.__setattr__(self, "_key", key)
        return key

    def item_text(self, item: int) -> str:
        """One line for prompts: title, topic and description."""
        return f"{self.title[item]} [{self.topic_names[self.topic[item]]}] — {self.description[item]}"


def _texts(
    alpha: np.ndarray,
    topic: np.ndarray,
    duration: np.ndarray,
    names: tuple[str, ...],
    keywords: tuple[tuple[str, ...], ...],
    rng: np.random.Generator,
    medium: str,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Deterministic titles (distinct combos per topic, then de-duplicated) and one-line descriptions."""
    m, f = alpha.shape
    n_kw = np.array([len(kw) for kw in keywords])
    combos = len(_ADJECTIVES) * len(_FORMATS) * n_kw  # per topic
    combo = np.zeros(m, dtype=np.int64)
    part = np.zeros(m, dtype=np.int64)
    order = np.argsort(topic, kind="stable")
    counts = np.bincount(topic, minlength=f)
    start = 0
    for k in np.flatnonzero(counts):
        members = order[start : start + counts[k]]
        start += counts[k]
        c = int(combos[k])
        draws = rng.permutation(c)[: min(len(members), c)]
        j = np.arange(len(members))
        combo[members] = draws[j % len(draws)]
        part[members] = j // c
    kw2_offset = rng.integers(1, np.maximum(n_kw[topic], 2))
    second = np.argsort(-alpha, axis=1)[:, 1] if f > 1 else topic
    second_w = alpha[np.arange(m), second] / np.maximum(alpha.sum(axis=1), 1e-300)

    titles: list[str] = []
    descs: list[str] = []
    seen: dict[str, int] = {}
    n_adj, n_fmt = len(_ADJECTIVES), len(_FORMATS)
    for i in range(m):
        k = int(topic[i])
        kws = keywords[k]
        c = int(combo[i])
        adj, fmt, kw = _ADJECTIVES[c % n_adj], _FORMATS[(c // n_adj) % n_fmt], c // (n_adj * n_fmt)
        title = f"{adj} {kws[kw].title()} {fmt}"
        if part[i]:
            title += f", Part {part[i] + 1}"
        if title in seen:
            seen[title] += 1
            title = f"{title} ({seen[title]})"
        seen.setdefault(title, 1)
        titles.append(title)
        length = "short " if duration[i] < 2.0 else "long " if duration[i] > 15.0 else ""
        lead = f"{length}{names[k]} {medium}"
        article = "An" if lead[0] in "aeiou" else "A"
        if f > 1 and second_w[i] >= 0.15 and second[i] != k:
            tail = f"{kws[kw]}, with a touch of {names[second[i]]}"
        else:
            tail = f"{kws[kw]} and {kws[(kw + int(kw2_offset[i])) % len(kws)]}"
        descs.append(f"{article} {lead} about {tail}.")
    return tuple(titles), tuple(descs)
