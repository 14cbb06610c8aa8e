"""Generate the synthetic demo set shipped in ``mmsentiment/demo_data`` (deterministic).

The posts are made up by this script: short template texts and drawn pictures (sunny scenes,
rainy scenes, plain office objects). They exist so that ``mmsentiment demo`` and the docs can
train a real model offline in a minute or two; they say nothing about real-world accuracy.

Run: ``python scripts/make_demo_data.py`` (rewrites the folder).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parents[1] / "mmsentiment" / "demo_data"
COUNTS = {"positive": 72, "negative": 54, "neutral": 36}
SIZE = 128

TEXTS = {
    "positive": ["What a wonderful {t} with friends!", "Loving this {t}, best day ever",
                 "So happy about the {t} :)", "Amazing {t}, I feel great",
                 "Grateful for this beautiful {t}", "The {t} made me smile all day"],
    "negative": ["Worst {t} ever, so disappointed", "I hate this {t}, ruined my day",
                 "Feeling sad after the {t}", "Terrible {t}, never again",
                 "The {t} was awful and depressing", "Angry about the {t} right now"],
    "neutral": ["The {t} starts at 9 am", "Photo of the {t} from today",
                "Report on the {t} is attached", "Here is the {t} schedule",
                "Posting the {t} details below", "The {t} is on the second floor"],
}
TOPICS = ["weekend", "trip", "concert", "meeting", "game", "morning", "holiday", "party",
          "match", "commute", "lecture", "dinner"]
VAGUE = ["Just saw the {t}", "Thoughts on the {t}?", "Here we go, {t} time", "{t} today"]


def draw(label: str, rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE))
    d = ImageDraw.Draw(img)
    if label == "positive":
        top, bottom = (rng.randint(60, 120), rng.randint(150, 210), 255), (255, 230, 150)
    elif label == "negative":
        g = rng.randint(40, 90)
        top, bottom = (g, g, g + 10), (g // 2, g // 2, g // 2 + 15)
    else:
        top = bottom = (rng.randint(215, 240),) * 3
    for y in range(SIZE):
        a = y / SIZE
        d.line([(0, y), (SIZE, y)], fill=tuple(int(t * (1 - a) + b * a)
                                               for t, b in zip(top, bottom)))
    if label == "positive":
        cx, cy, r = rng.randint(20, 108), rng.randint(15, 50), rng.randint(12, 22)
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 220, 40))
        d.ellipse([-20, 90 + rng.randint(-10, 10), 150, 190], fill=(60, 170, 60))
        for _ in range(rng.randint(2, 6)):
            x, y = rng.randint(0, SIZE), rng.randint(95, SIZE)
            d.ellipse([x - 4, y - 4, x + 4, y + 4], fill=rng.choice(
                [(255, 80, 120), (255, 150, 0), (250, 250, 250)]))
    elif label == "negative":
        for _ in range(rng.randint(2, 4)):
            x, y = rng.randint(-20, 100), rng.randint(-10, 40)
            d.ellipse([x, y, x + 70, y + 35], fill=(30, 30, 38))
        for _ in range(rng.randint(40, 80)):
            x, y = rng.randint(0, SIZE), rng.randint(30, SIZE)
            d.line([(x, y), (x - 3, y + 9)], fill=(150, 160, 190), width=1)
    else:
        for _ in range(rng.randint(2, 4)):
            x, y, w, h = rng.randint(5, 80), rng.randint(5, 80), rng.randint(20, 45), \
                rng.randint(15, 45)
            shade = rng.randint(90, 170)
            d.rectangle([x, y, x + w, y + h], outline=(shade,) * 3, width=3)
    return img.filter(ImageFilter.GaussianBlur(0.6))


def main() -> None:
    rng = random.Random(20261126)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "images").mkdir(exist_ok=True)
    for old in (OUT / "images").glob("*.jpg"):
        old.unlink()
    rows = []
    n = 0
    for label, count in COUNTS.items():
        for _ in range(count):
            topic = rng.choice(TOPICS)
            roll = rng.random()
            # About a fifth of the posts carry their sentiment in the image only, and a
            # fifth in the text only (the picture is drawn for another class).
            text = rng.choice(VAGUE if roll < 0.2 else TEXTS[label]).format(t=topic)
            picture = rng.choice([c for c in COUNTS if c != label]) if roll > 0.8 else label
            name = f"{n:04d}.jpg"
            draw(picture, rng).save(OUT / "images" / name, quality=80)
            rows.append({"id": n, "text": text, "image": f"images/{name}", "label": label})
            n += 1
    rng.shuffle(rows)
    with open(OUT / "posts.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["id", "text", "image", "label"])
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
