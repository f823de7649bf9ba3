"""Pictures of model quality, drawn with Pillow (no plotting library, nothing fetched)."""

import io

from PIL import Image, ImageDraw, ImageFont


def confusion_png(
    labels: list[str], columns: list[str], matrix: list[list[int]], expected: list[str]
) -> bytes:
    """A confusion matrix as a PNG: rows are true members, columns what they were called.

    `expected[i]` is the right column for row i (green); every other column is an error (red).
    """
    font = ImageFont.load_default(size=14)
    cell, left, top = 44, 150, 130
    width, height = left + cell * len(columns) + 10, top + cell * len(labels) + 10
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for i, row in enumerate(matrix):
        total = max(sum(row), 1)
        for j, value in enumerate(row):
            share = value / total
            right = expected[i] == columns[j]
            colour = (
                (int(255 - 180 * share), int(255 - 60 * share), int(255 - 180 * share))
                if right
                else (255, int(255 - 200 * share), int(255 - 200 * share))
            )
            x, y = left + j * cell, top + i * cell
            draw.rectangle([x, y, x + cell - 2, y + cell - 2], fill=colour)
            if value:
                draw.text(
                    (x + cell / 2, y + cell / 2), str(value), fill="black", font=font, anchor="mm"
                )
        draw.text(
            (left - 8, top + i * cell + cell / 2), labels[i], fill="black", font=font, anchor="rm"
        )
    for j, name in enumerate(columns):
        label = Image.new("RGBA", (top - 10, 20), (255, 255, 255, 0))
        ImageDraw.Draw(label).text((0, 2), name, fill="black", font=font)
        rotated = label.rotate(60, expand=True)
        image.paste(rotated, (left + j * cell + cell // 2 - 10, top - rotated.height - 4), rotated)
    draw.text((8, 8), "rows: who it was; columns: what it was called", fill=(90, 90, 90), font=font)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
