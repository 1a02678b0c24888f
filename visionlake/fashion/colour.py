"""Garment colours without any model: named colours with their share of the garment, and a family.

Why no model: colour is the one fashion fact every user wants on day one, on a fresh machine with no
network. Product and catalogue photos are shot on light, even backgrounds, so classic image processing
is enough:

1. **Foreground**: the background is the part of the image that is connected to the border and close
   (in CIELAB) to the border's median colour; a flood fill from the border finds it. The tolerance is
   tightened when a loose one would eat the whole product (a white shirt on a white background).
2. **Skin**: skin-tone pixels are dropped when they are a minority of the foreground (a model wearing the
   garment). When most of the foreground is skin-toned the product itself is (tan shoes, a nude bag), so
   they stay.
3. **Centre weight**: the product sits in the middle of the frame; hair, shoes and trousers of a model
   wearing a T-shirt sit near the edges, so pixels are weighted by a Gaussian around the centre.
4. **Clusters**: weighted k-means in CIELAB; each cluster centre is named after the nearest palette
   colour by CIEDE2000 and the names' shares are summed (the named colours reported to the user).
5. **Family**: a vote of the garment's pixels, achromatic first: a pixel whose chroma is below a bar that
   rises with lightness is black / grey / white by lightness alone; the others take the family of the
   nearest *chromatic* palette colour. Grey votes count for less (highlights on black leather, folds on
   a white shirt). ``multi`` when no family holds enough of the garment. Thresholds were tuned on
   product ids 10000-12999 only and confirmed on 13000-15999.

The palette and the mapping from the 46 ``baseColour`` names of the Myntra catalogue to the families
live here so that the benchmark and the tagger agree on what "blue" means.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage

from visionlake.errors import BadInput

if TYPE_CHECKING:
    from visionlake.fashion.person_mask import PersonMasker

#: Families, in display order. ``multi`` is only predicted when no single family dominates.
FAMILIES: tuple[str, ...] = (
    "black", "grey", "white", "beige", "brown", "red", "pink", "orange", "yellow", "green", "blue",
    "purple", "multi",
)

#: Families without hue: shading and highlights push any garment's pixels towards these.
ACHROMATIC = frozenset({"black", "grey", "white"})

#: Named palette: name -> (sRGB hex of the colour as it looks on a photographed garment, family).
#: Values are garment-like (slightly muted), not web primaries, because fabric under studio light never
#: reaches #0000FF.
PALETTE: dict[str, tuple[str, str]] = {
    "black": ("#2f2f30", "black"),
    "jet black": ("#151517", "black"),
    "charcoal": ("#68696c", "grey"),
    "dark grey": ("#7c7d80", "grey"),
    "grey": ("#939598", "grey"),
    "light grey": ("#aeb0b3", "grey"),
    "silver": ("#c3c5c9", "grey"),
    "steel": ("#767b82", "grey"),
    "white": ("#d9d9da", "white"),
    "bright white": ("#f6f6f4", "white"),
    "off white": ("#e6e2d8", "white"),
    "cream": ("#ece1c4", "white"),
    "beige": ("#d8c4a2", "beige"),
    "khaki": ("#b9a77f", "beige"),
    "nude": ("#e2bfa3", "beige"),
    "tan": ("#b07f55", "brown"),
    "camel": ("#c09463", "brown"),
    "brown": ("#6a5141", "brown"),
    "chestnut": ("#7a4a2c", "brown"),
    "dark brown": ("#3f332c", "brown"),
    "coffee": ("#4f3e33", "brown"),
    "taupe": ("#857565", "brown"),
    "copper": ("#a9653a", "brown"),
    "red": ("#c3262e", "red"),
    "bright red": ("#e0312f", "red"),
    "maroon": ("#6b1c26", "red"),
    "burgundy": ("#74203c", "red"),
    "pink": ("#eda3bd", "pink"),
    "pale pink": ("#eed0d8", "pink"),
    "hot pink": ("#de4a84", "pink"),
    "rose": ("#d1818f", "pink"),
    "magenta": ("#b42a7a", "pink"),
    "peach": ("#f3b595", "orange"),
    "coral": ("#ee7462", "orange"),
    "orange": ("#ec7a22", "orange"),
    "rust": ("#a44a2a", "orange"),
    "yellow": ("#f1d12e", "yellow"),
    "lemon": ("#f3e77c", "yellow"),
    "pale yellow": ("#efe6ae", "yellow"),
    "mustard": ("#cfa22c", "yellow"),
    "gold": ("#c2a04e", "yellow"),
    "green": ("#2f8a45", "green"),
    "dark green": ("#1f4a2e", "green"),
    "olive": ("#67672f", "green"),
    "sage": ("#8a9a84", "green"),
    "lime": ("#9ccc3a", "green"),
    "mint": ("#a7dcc0", "green"),
    "sea green": ("#3aa078", "green"),
    "blue": ("#2d5fae", "blue"),
    "royal blue": ("#2846b0", "blue"),
    "navy": ("#2b3448", "blue"),
    "dark navy": ("#22283a", "blue"),
    "denim": ("#4a6788", "blue"),
    "slate blue": ("#52607a", "blue"),
    "light blue": ("#9dc2e5", "blue"),
    "pale blue": ("#c4d0e8", "blue"),
    "dusty blue": ("#7a88a8", "blue"),
    "sky blue": ("#6fb3e0", "blue"),
    "turquoise": ("#2fb3c4", "blue"),
    "teal": ("#1e7479", "blue"),
    "purple": ("#643a8c", "purple"),
    "dusty purple": ("#6e5a7a", "purple"),
    "violet": ("#8353c6", "purple"),
    "lavender": ("#b8a6d8", "purple"),
    "mauve": ("#a9859b", "purple"),
    "plum": ("#5a2850", "purple"),
}

#: The 46 ``baseColour`` names of the Myntra catalogue (styles.csv) -> family. ``NA`` has none.
BASE_COLOUR_FAMILY: dict[str, str | None] = {
    "Black": "black",
    "Charcoal": "grey",
    "Grey": "grey",
    "Grey Melange": "grey",
    "Steel": "grey",
    "Silver": "grey",
    "Metallic": "grey",
    "White": "white",
    "Off White": "white",
    "Cream": "white",
    "Beige": "beige",
    "Khaki": "beige",
    "Nude": "beige",
    "Skin": "beige",
    "Brown": "brown",
    "Coffee Brown": "brown",
    "Mushroom Brown": "brown",
    "Tan": "brown",
    "Taupe": "brown",
    "Bronze": "brown",
    "Copper": "brown",
    "Red": "red",
    "Maroon": "red",
    "Burgundy": "red",
    "Pink": "pink",
    "Rose": "pink",
    "Magenta": "pink",
    "Peach": "orange",
    "Orange": "orange",
    "Rust": "orange",
    "Yellow": "yellow",
    "Mustard": "yellow",
    "Gold": "yellow",
    "Green": "green",
    "Olive": "green",
    "Sea Green": "green",
    "Lime Green": "green",
    "Fluorescent Green": "green",
    "Blue": "blue",
    "Navy Blue": "blue",
    "Turquoise Blue": "blue",
    "Teal": "blue",
    "Purple": "purple",
    "Lavender": "purple",
    "Mauve": "purple",
    "Multi": "multi",
    "NA": None,
}


def family_of_label(label: str | None) -> str | None:
    """Family of a catalogue colour name (``baseColour``), case-insensitive; None when unknown/NA."""
    if not label:
        return None
    key = label.strip().lower()
    for name, fam in BASE_COLOUR_FAMILY.items():
        if name.lower() == key:
            return fam
    for name, (_hex, fam) in PALETTE.items():
        if name == key:
            return fam
    return key if key in FAMILIES else None


# ---------------------------------------------------------------------------------------------- colour math
def _linearise(c: np.ndarray) -> np.ndarray:
    """sRGB 0..1 (float32) to linear light."""
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


#: :func:`_linearise` of every 8-bit value, computed by the same float32 operations: a uint8 photo is
#: linearised by lookup (bit-identical, ~6x faster than the power function on each of its pixels;
#: ingestion converts every photo, ``tests/fashion/test_colour_fast_paths.py`` checks the equality).
_LINEAR_U8: np.ndarray = _linearise(np.arange(256, dtype=np.float32) / 255.0).astype(np.float32)


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (uint8 or float 0..255, shape (..., 3)) to CIELAB under D65."""
    if isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8:
        c = _LINEAR_U8[rgb]
    else:
        c = _linearise(np.asarray(rgb, dtype=np.float32) / 255.0)
    m = np.array(
        [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]],
        dtype=np.float32,
    )
    xyz = c @ m.T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
    eps = 216 / 24389
    kappa = 24389 / 27
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16) / 116)
    lab = np.empty_like(f)
    lab[..., 0] = 116 * f[..., 1] - 16
    lab[..., 1] = 500 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200 * (f[..., 1] - f[..., 2])
    return lab


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65) back to sRGB uint8, for reporting a cluster's colour as hex."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16) / 116
    fx = fy + lab[..., 1] / 500
    fz = fy - lab[..., 2] / 200
    eps = 216 / 24389
    kappa = 24389 / 27

    def inv(f: np.ndarray) -> np.ndarray:
        return np.where(f**3 > eps, f**3, (116 * f - 16) / kappa)

    xyz = np.stack([inv(fx), np.where(lab[..., 0] > kappa * eps, fy**3, lab[..., 0] / kappa), inv(fz)], -1)
    xyz = xyz * np.array([0.95047, 1.0, 1.08883])
    m = np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
                  [0.0556434, -0.2040259, 1.0572252]])
    c = np.clip(xyz @ m.T, 0, 1)
    c = np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)
    return np.clip(np.round(c * 255), 0, 255).astype(np.uint8)


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference, broadcasting over leading axes (Sharma et al. 2005)."""
    lab1 = np.asarray(lab1, dtype=np.float64)
    lab2 = np.asarray(lab2, dtype=np.float64)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c1 = np.hypot(a1, b1)
    c2 = np.hypot(a2, b2)
    cbar = (c1 + c2) / 2
    g = 0.5 * (1 - np.sqrt(cbar**7 / (cbar**7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dlp = L2 - L1
    dcp = c2p - c1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(c1p * c2p == 0, 0, dh)
    dhp = 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh) / 2)
    lbar = (L1 + L2) / 2
    cbarp = (c1p + c2p) / 2
    hsum = h1p + h2p
    hbar = np.where(np.abs(h1p - h2p) > 180, np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2), hsum / 2)
    hbar = np.where(c1p * c2p == 0, hsum, hbar)
    t = (1 - 0.17 * np.cos(np.radians(hbar - 30)) + 0.24 * np.cos(np.radians(2 * hbar))
         + 0.32 * np.cos(np.radians(3 * hbar + 6)) - 0.20 * np.cos(np.radians(4 * hbar - 63)))
    dtheta = 30 * np.exp(-(((hbar - 275) / 25) ** 2))
    rc = 2 * np.sqrt(cbarp**7 / (cbarp**7 + 25.0**7))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / np.sqrt(20 + (lbar - 50) ** 2)
    sc = 1 + 0.045 * cbarp
    sh = 1 + 0.015 * cbarp * t
    rt = -np.sin(np.radians(2 * dtheta)) * rc
    return np.sqrt((dlp / sl) ** 2 + (dcp / sc) ** 2 + (dhp / sh) ** 2 + rt * (dcp / sc) * (dhp / sh))


def _hex_to_rgb(h: str) -> tuple[int, int, int]:
    h = h.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


_PALETTE_NAMES: list[str] = list(PALETTE)
_PALETTE_LAB: np.ndarray = srgb_to_lab(np.array([_hex_to_rgb(PALETTE[n][0]) for n in _PALETTE_NAMES]))


def name_lab(lab: np.ndarray) -> list[str]:
    """Nearest palette name (CIEDE2000) for each Lab colour in an (n, 3) array."""
    lab = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
    d = delta_e2000(lab[:, None, :], _PALETTE_LAB[None, :, :])
    return [_PALETTE_NAMES[i] for i in d.argmin(axis=1)]


# ---------------------------------------------------------------------------------------------- results
@dataclass
class NamedColour:
    """One colour of a garment: palette name, family, share of the garment area and the measured hex."""

    name: str
    family: str
    share: float
    hex: str


@dataclass
class ColourResult:
    """Colours of a garment, largest share first, and the family of the whole garment."""

    family: str
    colours: list[NamedColour] = field(default_factory=list)
    family_shares: dict[str, float] = field(default_factory=dict)
    foreground: float = 0.0  # share of the image that is product (not background)
    skin_removed: float = 0.0  # share of the foreground dropped as skin
    person_mask: bool = False  # the garment pixels came from the person mask (a photo of a person)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON output and pickling across worker processes."""
        return asdict(self)


# ---------------------------------------------------------------------------------------------- pipeline
@dataclass
class ColourSettings:
    """Knobs of the pipeline; defaults were tuned on product ids 10000-12999 only."""

    max_side: int = 224  # analysis resolution: enough for colour, fast
    k: int = 3  # k-means clusters
    bg_tolerances: tuple[float, ...] = (10.0, 5.0, 2.5)  # deltaE76 to the border colour, loosest first
    min_foreground: float = 0.04  # a tolerance that leaves less than this is too loose
    skin_max_share: float = 0.75  # above this the product itself is skin-toned: keep those pixels
    centre_sigma: float = 0.22  # Gaussian centre weight, as a fraction of the image side
    multi_below: float = 0.2  # no family above this share -> "multi"
    samples: int = 2500  # pixels fed to k-means
    seed: int = 0
    torso_centre: float = 0.38  # centre weight on a person: this far down from the top of the head
    # achromatic test: chroma below ``chroma_min + chroma_per_l * (L - 50)``; dark fabric (navy, dark
    # brown) keeps its hue at a chroma that would be noise on a light one, so the bar rises with lightness
    chroma_min: float = 8.0
    chroma_per_l: float = 0.1
    black_below_l: float = 37.0  # achromatic pixels darker than this are black ...
    white_above_l: float = 81.0  # ... lighter than this white, grey in between
    # vote weights: a black shoe's highlights and a white shirt's folds are grey pixels, so a grey pixel
    # counts for less; everything else counts fully
    grey_weight: float = 0.55
    white_weight: float = 1.0


#: Families a pixel can vote for (``multi`` is a property of the whole garment, not of a pixel).
_VOTE_FAMILIES: tuple[str, ...] = tuple(f for f in FAMILIES if f != "multi")
_CHROMATIC_NAMES: list[str] = [n for n in _PALETTE_NAMES if PALETTE[n][1] not in ACHROMATIC]
_CHROMATIC_LAB: np.ndarray = _PALETTE_LAB[[_PALETTE_NAMES.index(n) for n in _CHROMATIC_NAMES]]
_CHROMATIC_FAMILY_IDX: np.ndarray = np.array([_VOTE_FAMILIES.index(PALETTE[n][1]) for n in _CHROMATIC_NAMES])
_BLACK, _GREY, _WHITE = (_VOTE_FAMILIES.index(f) for f in ("black", "grey", "white"))


def _achromatic(lab: np.ndarray, s: ColourSettings) -> np.ndarray:
    """True where a Lab colour has too little chroma for its lightness to carry a hue."""
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return chroma < s.chroma_min + s.chroma_per_l * (lab[..., 0] - 50.0)


def _achromatic_family(lightness: np.ndarray, s: ColourSettings) -> np.ndarray:
    """black / grey / white index by lightness alone: the decision shoppers make by eye."""
    return np.where(lightness < s.black_below_l, _BLACK, np.where(lightness > s.white_above_l, _WHITE, _GREY))


def pixel_families(lab: np.ndarray, s: ColourSettings | None = None) -> np.ndarray:
    """Family index (into the families without ``multi``) of each Lab colour in an (n, 3) array.

    Achromatic first, then hue: deciding grey-or-coloured by a chroma bar and naming only the coloured
    pixels after the nearest *chromatic* palette colour keeps desaturated denim blue and stops a grey
    palette entry from swallowing dark navy or brown.
    """
    s = s or ColourSettings()
    lab = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
    out = _achromatic_family(lab[:, 0], s)
    chrom = ~_achromatic(lab, s)
    if chrom.any():
        out[chrom] = _chromatic_family(lab[chrom])
    return out.astype(np.int64)


#: Memo of the nearest chromatic family per 2-unit Lab cell (-1: not computed yet). Garments share few
#: distinct colours, so after a few images almost every pixel is a lookup instead of 55 CIEDE2000s.
_CELL_FAMILY: np.ndarray = np.full((51, 128, 128), -1, dtype=np.int8)


def _chromatic_family(lab: np.ndarray) -> np.ndarray:
    """Family index of the nearest chromatic palette colour for each row of ``lab`` (2-unit cells)."""
    li = np.clip(np.round(lab[:, 0] / 2.0), 0, 50).astype(np.intp)
    ai = np.clip(np.round(lab[:, 1] / 2.0) + 64, 0, 127).astype(np.intp)
    bi = np.clip(np.round(lab[:, 2] / 2.0) + 64, 0, 127).astype(np.intp)
    fam = _CELL_FAMILY[li, ai, bi]
    missing = fam < 0
    if missing.any():
        cells = np.unique(np.stack([li[missing], ai[missing], bi[missing]], axis=1), axis=0)
        centres = np.stack([cells[:, 0] * 2.0, (cells[:, 1] - 64) * 2.0, (cells[:, 2] - 64) * 2.0], axis=1)
        d = delta_e2000(centres[:, None, :], _CHROMATIC_LAB[None, :, :])
        _CELL_FAMILY[cells[:, 0], cells[:, 1], cells[:, 2]] = _CHROMATIC_FAMILY_IDX[d.argmin(axis=1)]
        fam = _CELL_FAMILY[li, ai, bi]
    return fam.astype(np.int64)


def _vote_weights(s: ColourSettings) -> np.ndarray:
    w = np.ones(len(_VOTE_FAMILIES))
    w[_GREY] = s.grey_weight
    w[_WHITE] = s.white_weight
    return w


def _name_one(lab: np.ndarray, s: ColourSettings) -> str:
    """Palette name of one cluster centre, consistent with :func:`pixel_families` on its family."""
    lab = np.asarray(lab, dtype=np.float64).reshape(1, 3)
    if _achromatic(lab, s)[0]:
        fam = _VOTE_FAMILIES[int(_achromatic_family(lab[:, 0], s)[0])]
        cand = [i for i, n in enumerate(_PALETTE_NAMES) if PALETTE[n][1] == fam]
    else:
        cand = [_PALETTE_NAMES.index(n) for n in _CHROMATIC_NAMES]
    d = delta_e2000(lab, _PALETTE_LAB[cand])
    return _PALETTE_NAMES[cand[int(d.argmin())]]


def _as_rgb_array(image: PILImage.Image | np.ndarray, max_side: int) -> np.ndarray:
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.size == 0:
            raise BadInput(f"expected an RGB image array of shape (h, w, 3), got {arr.shape}")
        image = PILImage.fromarray(arr[..., :3].astype(np.uint8))
    if not isinstance(image, PILImage.Image):
        raise BadInput(f"expected a PIL image or an RGB array, got {type(image).__name__}")
    if image.width < 4 or image.height < 4:
        raise BadInput(f"image too small for colour analysis ({image.width}x{image.height})")
    if image.mode != "RGB":
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            bg = PILImage.new("RGBA", image.size, (255, 255, 255, 255))
            image = PILImage.alpha_composite(bg, image.convert("RGBA"))
        image = image.convert("RGB")
    if max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), PILImage.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def foreground_mask(lab: np.ndarray, settings: ColourSettings | None = None) -> np.ndarray:
    """True where the pixel is product: not border-connected background of the border's colour."""
    s = settings or ColourSettings()
    h, w, _ = lab.shape
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    bg = np.median(border, axis=0)
    dist = np.sqrt(((lab - bg) ** 2).sum(-1))
    # a busy border (street photo, coloured studio wall) has no single background colour
    border_spread = float(np.median(np.sqrt(((border - bg) ** 2).sum(-1))))
    if border_spread > 12:
        return np.ones((h, w), dtype=bool)
    fg = np.ones((h, w), dtype=bool)
    for tol in s.bg_tolerances:
        near = dist < tol
        labels, _n = ndimage.label(near)
        edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        edge = edge[edge > 0]
        background = np.isin(labels, edge)
        fg = ~background
        if fg.mean() >= s.min_foreground:
            break
    # anti-aliased edges are half background: drop one ring when the product is big enough to afford it
    eroded = ndimage.binary_erosion(fg, iterations=1)
    if eroded.sum() >= 0.5 * fg.sum() and eroded.sum() > 20:
        fg = eroded
    return fg


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Skin-tone pixels (YCrCb box rule of Chai & Ngan, tightened on brightness), any skin colour."""
    c = rgb.astype(np.float32)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    return (y > 60) & (cr >= 138) & (cr <= 173) & (cb >= 77) & (cb <= 127) & (r > g) & (g > b)


def _person_box(fg: np.ndarray, skin: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box of a standing person when the top of the foreground is mostly skin (a face).

    Why: catalogue shots of tops show the whole model; the image centre then falls on the trousers.
    """
    rows = np.flatnonzero(fg.any(axis=1))
    cols = np.flatnonzero(fg.any(axis=0))
    if len(rows) < 20 or len(cols) < 5:
        return None
    top, bottom = int(rows[0]), int(rows[-1])
    height = bottom - top + 1
    if height < 0.6 * fg.shape[0]:
        return None
    head = slice(top, top + max(2, height // 8))
    head_fg = fg[head].sum()
    if head_fg == 0 or skin[head].sum() / head_fg < 0.3:
        return None
    return top, bottom, int(cols[0]), int(cols[-1])


def _kmeans(x: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator, iters: int = 12
            ) -> tuple[np.ndarray, np.ndarray]:
    """Weighted k-means (k-means++ start); small and deterministic, no per-call sklearn overhead."""
    n = len(x)
    k = min(k, n)
    p = w / w.sum()
    centres = [x[rng.choice(n, p=p)]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        q = d2 * w
        if q.sum() <= 0:
            break
        centres.append(x[rng.choice(n, p=q / q.sum())])
        d2 = np.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    c = np.array(centres)
    assign = np.zeros(n, dtype=np.int64)
    for _ in range(iters):
        dist = ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)
        new = dist.argmin(1)
        if _ > 0 and np.array_equal(new, assign):
            break
        assign = new
        for j in range(len(c)):
            m = assign == j
            if m.any():
                c[j] = _weighted_mean(x[m], w[m])
    return c, assign


def _weighted_mean(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``np.average(x, axis=0, weights=w)`` by the very operations numpy performs (same bits), without
    its argument checks: k-means calls it ~27 times per photo and the checks cost more than the sums."""
    wgt = w.reshape(-1, 1)
    scl = wgt.sum(axis=0)
    if np.any(scl == 0.0):
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    return np.multiply(x, wgt).sum(axis=0) / scl


@dataclass
class GarmentPixels:
    """Lab pixels of the garment (background and skin removed), their centre weights, and the masks' shares."""

    lab: np.ndarray
    weight: np.ndarray
    foreground: float
    skin_share: float
    skin_removed: bool
    rng: np.random.Generator
    person_mask: bool = False


def garment_pixels(image: PILImage.Image | np.ndarray, settings: ColourSettings | None = None,
                   masker: PersonMasker | None = None) -> GarmentPixels:
    """The pixels every colour decision looks at: shared by the model-free family and the learned head.

    With a ``masker`` (:mod:`visionlake.fashion.person_mask`) a photo of a person takes its garment
    from the person mask below the neck instead of the flood-filled foreground; the centre weight
    still follows the foreground's person box, as measured.
    """
    s = settings or ColourSettings()
    rgb = _as_rgb_array(image, s.max_side)
    lab = srgb_to_lab(rgb)
    flood = foreground_mask(lab, s)
    region = masker.region(rgb) if masker is not None else None
    fg = flood if region is None else region
    fg_share = float(fg.mean())
    skin = skin_mask(rgb) & fg
    skin_share = float(skin.sum() / max(fg.sum(), 1))
    keep = fg & ~skin if 0 < skin_share <= s.skin_max_share else fg
    if keep.sum() < 10:  # nothing left: fall back to the foreground, then the whole image
        keep = fg if fg.sum() >= 10 else np.ones_like(fg)
    h, w = fg.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    person = _person_box(flood, skin if region is None else skin_mask(rgb) & flood)
    if person is not None:  # a model wearing the product: the garment is the torso, not the jeans
        top, bottom, left, right = person
        cy, cx = top + s.torso_centre * (bottom - top), (left + right) / 2
    yy, xx = np.nonzero(keep)  # the centre weight of the kept pixels only, in lab[keep]'s order
    sig = s.centre_sigma * max(h, w)
    wt = np.exp(-(((yy - cy) ** 2) + ((xx - cx) ** 2)) / (2 * sig**2)).astype(np.float64)
    px = lab[keep].astype(np.float64)
    rng = np.random.default_rng(s.seed)
    if len(px) > s.samples:
        idx = rng.choice(len(px), s.samples, replace=False, p=wt / wt.sum())
        px, wt = px[idx], np.ones(len(idx))
    return GarmentPixels(px, wt, fg_share, skin_share, keep is not fg, rng, region is not None)


def analyse_colours(image: PILImage.Image | np.ndarray, settings: ColourSettings | None = None,
                    masker: PersonMasker | None = None, garment: GarmentPixels | None = None) -> ColourResult:
    """Name the colours of the product in ``image`` (RGB) and pick its colour family (``masker``: see
    :func:`garment_pixels`).

    ``garment``: the photo's :func:`garment_pixels` when the caller already has them (made with the same
    settings), so that a caller which also runs the colour head segments each photo, and runs the pose
    model, once (nothing here keeps them: they live as long as the caller's pass).
    """
    s = settings or ColourSettings()
    g = garment if garment is not None else garment_pixels(image, s, masker)
    px, wt, rng, fg_share, skin_share = g.lab, g.weight, g.rng, g.foreground, g.skin_share
    centres, assign = _kmeans(px, wt, s.k, rng)
    totals = np.bincount(assign, weights=wt, minlength=len(centres))
    totals = totals / totals.sum()
    names = [_name_one(c, s) for c in centres]
    by_name: dict[str, list[Any]] = {}
    for j, name in enumerate(names):
        if totals[j] <= 0:
            continue
        entry = by_name.setdefault(name, [0.0, np.zeros(3)])
        entry[0] += totals[j]
        entry[1] = entry[1] + centres[j] * totals[j]
    colours = []
    for name, (share, lab_sum) in by_name.items():
        fam = PALETTE[name][1]
        hex_ = "#" + "".join(f"{v:02x}" for v in lab_to_srgb(lab_sum / share).tolist())
        colours.append(NamedColour(name=name, family=fam, share=round(float(share), 4), hex=hex_))
    colours.sort(key=lambda c: -c.share)
    # the family is a vote of the garment's pixels, not of the k-means clusters: a cluster centre averages
    # a navy shirt's folds with its highlights and lands on grey, while most of its pixels are still blue
    fam_idx = pixel_families(px, s)
    votes = np.bincount(fam_idx, weights=wt, minlength=len(_VOTE_FAMILIES))
    fam_shares = {f: float(v / votes.sum()) for f, v in zip(_VOTE_FAMILIES, votes, strict=True) if v > 0}
    weighted = votes * _vote_weights(s)
    top_family = _VOTE_FAMILIES[int(weighted.argmax())]
    family = "multi" if fam_shares[top_family] < s.multi_below else top_family
    return ColourResult(
        family=family,
        colours=colours,
        family_shares={k: round(v, 4) for k, v in sorted(fam_shares.items(), key=lambda kv: -kv[1])},
        foreground=round(fg_share, 4),
        skin_removed=round(skin_share if g.skin_removed else 0.0, 4),
        person_mask=g.person_mask,
    )


def mean_colour_family(image: PILImage.Image | np.ndarray, settings: ColourSettings | None = None) -> str:
    """Naive baseline: the family of the mean Lab colour of the non-background pixels."""
    s = settings or ColourSettings()
    rgb = _as_rgb_array(image, s.max_side)
    lab = srgb_to_lab(rgb)
    fg = foreground_mask(lab, s)
    px = lab[fg] if fg.sum() else lab.reshape(-1, 3)
    return PALETTE[name_lab(px.mean(0, keepdims=True))[0]][1]
