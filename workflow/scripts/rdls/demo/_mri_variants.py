"""How the demo's subtypes differ in the MRI: one mechanism at a time (``demo.mri_signal``).

``mixed`` is the original demo: the subtypes differ in size, margin, texture and signal at
once (its distributions live in ``_mri._LOOKS``). Every other variant draws each subject's
tumour from one shared distribution, except for a single mechanism whose distribution
depends on the subtype:

``size``
    Equivalent diameter, log-normal, overlapping between subtypes: RDLS2 small (median
    22.5 mm), RDLS3 intermediate (28 mm), RDLS1 large (34.5 mm). Tumour length and volume
    on T2-weighted MRI vary several-fold between patients and grow with T stage
    (Horvat et al. 2019); the medians span the usual 2-5 cm of locally advanced tumours.
``margin``
    RDLS2 smooth (pushing, expansile), RDLS3 lobulated (nodular), RDLS1 spiculated
    (infiltrative): thin spikes and fine low-signal strands running from them into the
    mesorectal fat. A smooth or nodular outer border versus spiculated extension and fat
    stranding is how T2-weighted MRI separates T2 from T3 tumours and reads extramural
    spread (Brown et al. 2003, MERCURY 2007, Horvat et al. 2019); the infiltrative growth
    front carries the worse outcome (Jass et al. 1987). Same size distribution for all.
``texture``
    RDLS2 homogeneous intermediate signal; RDLS1 heterogeneous, with a central core of low
    (fibrotic) or high (necrotic) signal; RDLS3 striated, with layered low-signal bands of
    fibrosis. Heterogeneity, necrosis and fibrosis are what T2-weighted texture analysis of
    rectal cancer picks up (Horvat et al. 2019; Nougaret et al. 2013 on fibrotic low signal).
    The mean tumour signal is the same: the texture is centred on the subject's drawn level.
``intensity``
    Mean T2 signal relative to fat: RDLS2 high (mucinous: mucin is bright on T2, Kim et al.
    2003; Hussain et al. 1999), RDLS1 intermediate (usual adenocarcinoma, between muscle and
    fat), RDLS3 low (desmoplastic, fibrotic stroma, near muscle; Nougaret et al. 2013).
``none``
    The null: every tumour comes from the shared distribution whatever its subtype. The
    other modalities keep their planted subtype effects.

The shared distribution is unimodal in every mechanism (no hidden clusters): a log-normal
diameter (median 28 mm), a gently undulating margin, mild fine texture and intermediate
signal. The subtype effects are sized so that a classifier on radiomic features separates
the subtypes clearly but not perfectly; scanner effects, noise and rater variability are
those of the original demo.

References
----------
Brown G, Radcliffe AG, Newcombe RG, et al. Preoperative assessment of prognostic factors in
rectal cancer using high-resolution magnetic resonance imaging. Br J Surg 2003;90:355-364.
Horvat N, Carlos Tavares Rocha C, Clemente Oliveira B, et al. MRI of rectal cancer: tumor
staging, imaging techniques, and management. RadioGraphics 2019;39:367-387.
Hussain SM, Outwater EK, Siegelman ES. Mucinous versus nonmucinous rectal carcinomas:
differentiation with MR imaging. Radiology 1999;213:79-85.
Jass JR, Love SB, Northover JM. A new prognostic classification of rectal cancer. Lancet
1987;1:1303-1306.
Kim MJ, Park JS, Park SI, et al. Accuracy in differentiation of mucinous and nonmucinous
rectal carcinoma on MR imaging. J Comput Assist Tomogr 2003;27:48-55.
MERCURY Study Group. Extramural depth of tumor invasion at thin-section MR in patients with
rectal cancer: results of the MERCURY study. Radiology 2007;243:132-139.
Nougaret S, Reinhold C, Mikhael HW, et al. The use of MR imaging in treatment planning for
patients with rectal carcinoma: have you checked the "DISTANCE"? Radiology 2013;268:330-344.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

MRI_SIGNALS = ("mixed", "size", "margin", "texture", "intensity", "none")

Range = tuple[float, float]  # uniform draw between low and high


@dataclass(frozen=True)
class Size:
    """Equivalent diameter: log-normal with this median and log-sd, clipped (mm)."""

    median_mm: float
    log_sd: float
    clip_mm: Range = (14.0, 48.0)


@dataclass(frozen=True)
class Margin:
    """Lobes and spikes (von Mises-Fisher bumps on the radius) and strands into the fat."""

    name: str
    lobes: tuple[tuple[int, int], Range, Range]  # count (inclusive), kappa, amplitude
    spikes: tuple[tuple[int, int], Range, Range]
    strand_probability: float = 0.0  # per spike: a low-signal strand runs on into the fat
    strand_length_mm: Range = (3.0, 9.0)


@dataclass(frozen=True)
class Texture:
    """Correlated texture, and optionally a central core or striated bands."""

    name: str
    sd: Range  # amplitude of the correlated texture, relative to fat
    sigma_vox: Range  # its in-plane correlation length
    core_fraction: Range | None = None  # core radius, relative to the tumour's
    fibrotic_core_probability: float = 0.0  # else the core is necrotic (bright)
    fibrotic_contrast: Range = (0.0, 0.0)  # subtracted in a fibrotic core
    necrotic_contrast: Range = (0.0, 0.0)  # added in a necrotic core
    band_period_mm: Range | None = None  # striated bands: spacing, width and depth
    band_width_mm: Range = (0.0, 0.0)
    band_depth: Range = (0.0, 0.0)


@dataclass(frozen=True)
class Intensity:
    """Mean T2 signal of the tumour relative to fat: normal, clipped."""

    name: str
    mean: float
    sd: float
    clip: Range = (0.30, 0.95)


@dataclass(frozen=True)
class Phenotype:
    size: Size
    margin: Margin
    texture: Texture
    intensity: Intensity


SHARED = Phenotype(
    size=Size(median_mm=28.0, log_sd=0.17),
    margin=Margin(
        name="shared",
        lobes=((1, 4), (2.0, 8.0), (0.02, 0.14)),
        spikes=((0, 2), (40.0, 120.0), (0.05, 0.15)),
    ),
    texture=Texture(name="shared", sd=(0.03, 0.06), sigma_vox=(1.0, 2.0)),
    intensity=Intensity(name="intermediate", mean=0.56, sd=0.06),
)

# The one mechanism of each variant, per subtype; every other mechanism stays SHARED.
BY_SUBTYPE = {
    "size": {
        "RDLS1": Size(median_mm=35.5, log_sd=0.085),
        "RDLS2": Size(median_mm=22.0, log_sd=0.085),
        "RDLS3": Size(median_mm=28.0, log_sd=0.085),
    },
    "margin": {
        "RDLS1": Margin(
            name="spiculated",
            lobes=((1, 3), (2.0, 6.0), (0.00, 0.08)),
            spikes=((8, 18), (40.0, 100.0), (0.30, 0.70)),
            strand_probability=0.6,
        ),
        "RDLS2": Margin(
            name="smooth",
            lobes=((0, 2), (1.5, 5.0), (0.00, 0.05)),
            spikes=((0, 0), (40.0, 120.0), (0.0, 0.0)),
        ),
        "RDLS3": Margin(
            name="lobulated",
            lobes=((5, 9), (10.0, 25.0), (0.25, 0.45)),
            spikes=((0, 0), (40.0, 120.0), (0.0, 0.0)),
        ),
    },
    "texture": {
        "RDLS1": Texture(
            name="core",
            sd=(0.03, 0.07),
            sigma_vox=(1.5, 2.5),
            core_fraction=(0.35, 0.60),
            fibrotic_core_probability=0.6,
            fibrotic_contrast=(0.08, 0.18),
            necrotic_contrast=(0.12, 0.28),
        ),
        "RDLS2": Texture(name="homogeneous", sd=(0.015, 0.035), sigma_vox=(0.6, 1.2)),
        "RDLS3": Texture(
            name="bands",
            sd=(0.02, 0.05),
            sigma_vox=(1.0, 2.0),
            band_period_mm=(3.5, 6.0),
            band_width_mm=(1.0, 1.6),
            band_depth=(0.08, 0.18),
        ),
    },
    "intensity": {
        "RDLS1": Intensity(name="intermediate", mean=0.56, sd=0.05),
        "RDLS2": Intensity(name="mucinous", mean=0.76, sd=0.06),
        "RDLS3": Intensity(name="fibrotic", mean=0.40, sd=0.05),
    },
}


def check_mri_signal(mri_signal: str) -> None:
    """Refuse an unknown variant with the list of known ones."""
    if mri_signal not in MRI_SIGNALS:
        raise ValueError(
            f"demo.mri_signal: unknown variant {mri_signal!r}; choose one of "
            f"{', '.join(MRI_SIGNALS)}"
        )


def phenotype(mri_signal: str, subtype: str) -> Phenotype:
    """The distributions one subject's tumour is drawn from (not for ``mixed``)."""
    check_mri_signal(mri_signal)
    if mri_signal == "mixed":
        raise ValueError("the mixed demo draws from _mri._LOOKS, not from a phenotype")
    if mri_signal == "none":
        return SHARED
    return replace(SHARED, **{mri_signal: BY_SUBTYPE[mri_signal][subtype]})
