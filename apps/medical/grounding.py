"""What a radiology draft may rest on, computed from the de-identified DICOM headers and pixel features
(plain Python, no Django).

* :func:`study_facts`: modality, body parts, series and image counts, slice thickness, contrast route.
* :func:`technique_text` and :func:`comparison_text`: the technique and comparison sections, written by
  code from the headers, so they are always right (the language model never writes them).
* :func:`offered_features`: the features of this study a finding may cite (``id``, label, value), in
  the vocabulary :data:`FEATURE_IDS` that the v2 output schema enumerates.
* :func:`draft_sections`: a v2 answer (findings ``{feature, text}``, impression, recommendations) turned
  into report sections: technique and comparison from code, each finding's evidence from the feature it
  cites.

What is checked against these facts (the gate) is in :mod:`apps.medical.decisions`.
"""
from __future__ import annotations

from typing import Any

#: every feature id a v2 finding may cite (the schema's enum); a study offers the subset it has
FEATURE_IDS = (
    "images", "orientation", "slice_thickness", "pixel_spacing", "matrix", "extent", "intensity_mean",
    "intensity_range", "air_fraction", "lung_fraction", "fat_fraction", "soft_tissue_fraction",
    "bone_fraction", "contrast", "tube_voltage", "field_strength", "sequence", "view_position",
    "laterality", "burned_in_text", "color",
)

_LABELS = {
    "images": ("number of images", "图像数量"),
    "orientation": ("image orientation", "图像方向"),
    "slice_thickness": ("slice thickness", "层厚"),
    "pixel_spacing": ("pixel spacing", "像素间距"),
    "matrix": ("image matrix", "图像矩阵"),
    "extent": ("scanned extent", "扫描范围"),
    "intensity_mean": ("mean intensity", "平均强度"),
    "intensity_range": ("intensity range (5th to 95th percentile)", "强度范围（第5至第95百分位）"),
    "air_fraction": ("share of air voxels (below -900 HU)", "空气体素比例（低于 -900 HU）"),
    "lung_fraction": ("share of lung-density voxels (-900 to -200 HU)", "肺密度体素比例（-900 至 -200 HU）"),
    "fat_fraction": ("share of fat-density voxels (-200 to -30 HU)", "脂肪密度体素比例（-200 至 -30 HU）"),
    "soft_tissue_fraction": ("share of soft-tissue voxels (-30 to 300 HU)",
                             "软组织体素比例（-30 至 300 HU）"),
    "bone_fraction": ("share of bone-density voxels (300 HU and above)", "骨密度体素比例（300 HU 及以上）"),
    "contrast": ("contrast route in the headers", "头信息中的造影剂途径"),
    "tube_voltage": ("tube voltage", "管电压"),
    "field_strength": ("magnetic field strength", "磁场强度"),
    "sequence": ("MR sequence timing", "磁共振序列参数"),
    "view_position": ("view position", "投照体位"),
    "laterality": ("laterality", "侧别"),
    "burned_in_text": ("burned-in text in the pixels", "像素中的烧录文字"),
    "color": ("colour image", "彩色图像"),
}
_ORIENTATION_ZH = {"axial": "轴位", "coronal": "冠状位", "sagittal": "矢状位", "oblique": "斜位"}
_HU_CLASSES = (("air", "air_fraction"), ("lung", "lung_fraction"), ("fat", "fat_fraction"),
               ("soft_tissue", "soft_tissue_fraction"), ("bone", "bone_fraction"))


def _series(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return list(summary.get("series") or [summary])


def _main_series(summary: dict[str, Any]) -> dict[str, Any]:
    """The series with the most images (its features are the ones offered)."""
    return max(_series(summary), key=lambda s: s.get("frames") or 0)


def _num(value: Any, digits: int = 2) -> str:
    """A number as people write it: no trailing zeros (5.0 -> 5, 0.6615 -> 0.66)."""
    text = f"{float(value):.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def study_facts(summary: dict[str, Any]) -> dict[str, Any]:
    """What the headers say about the study, for the technique section and the fact checks."""
    series = _series(summary)
    modalities = summary.get("modalities") or sorted({s["modality"] for s in series if s.get("modality")})
    body_parts = summary.get("body_parts") or sorted({s["body_part"] for s in series if s.get("body_part")})
    thickness = sorted({float(s["slice_thickness_mm"]) for s in series if s.get("slice_thickness_mm")})
    routes = sorted({str((s.get("acquisition") or {}).get("ContrastBolusRoute")) for s in series
                     if (s.get("acquisition") or {}).get("ContrastBolusRoute")})
    frames = [int(s.get("frames") or 0) for s in series]
    return {
        "modalities": [str(m).upper() for m in modalities],
        "body_parts": [str(b) for b in body_parts],
        "series_count": int(summary.get("series_count") or len(series)),
        "images": int(summary.get("total_frames") or sum(frames)),
        "series_images": frames,
        "slice_thickness_mm": thickness,
        "contrast_routes": routes,
        "orientations": sorted({s["orientation"] for s in series if s.get("orientation")}),
        "description": summary.get("study_description") or "",
    }


def technique_text(summary: dict[str, Any], lang: str = "en") -> str:
    """The technique section from the headers (modality, body part, series, images, thickness,
    orientation, contrast)."""
    f = study_facts(summary)
    modality = ", ".join(f["modalities"]) or ("imaging" if lang == "en" else "影像")
    thickness = ", ".join(_num(t) for t in f["slice_thickness_mm"])
    if lang == "zh-hans":
        parts = [f"{modality} 检查", f"部位：{'、'.join(f['body_parts']) or '头信息未注明'}",
                 f"{f['series_count']} 个序列，共 {f['images']} 幅图像"]
        if f["orientations"]:
            parts.append("方向：" + "、".join(_ORIENTATION_ZH.get(o, o) for o in f["orientations"]))
        if thickness:
            parts.append(f"层厚 {thickness} 毫米")
        parts.append(f"造影剂：{'、'.join(f['contrast_routes'])}途径" if f["contrast_routes"]
                     else "头信息未记录造影剂")
        return "；".join(parts) + "。"
    images = "images" if f["images"] != 1 else "image"
    body = ", ".join(f["body_parts"]) or "not given in the headers"
    parts = [f"{modality} examination", f"body part: {body}",
             f"{f['series_count']} series, {f['images']} {images}"]
    if f["orientations"]:
        parts.append("orientation: " + ", ".join(f["orientations"]))
    if thickness:
        parts.append(f"slice thickness {thickness} mm")
    parts.append(f"contrast: {', '.join(f['contrast_routes'])} route recorded" if f["contrast_routes"]
                 else "no contrast recorded in the headers")
    return "; ".join(parts) + "."


def comparison_text(lang: str = "en") -> str:
    """The comparison section: the de-identified inputs hold no prior study."""
    if lang == "zh-hans":
        return "系统未获得既往检查（输入已去标识化），未作对比。"
    return "No prior study was available to the system (the inputs are de-identified); no comparison made."


def offered_features(summary: dict[str, Any], lang: str = "en") -> list[dict[str, str]]:
    """The features of this study a finding may cite: ``[{"id", "label", "value"}, ...]`` in
    :data:`FEATURE_IDS` order, each value computed from the headers or the pixels."""
    s = _main_series(summary)
    zh = lang == "zh-hans"
    facts = study_facts(summary)
    values: dict[str, str] = {}
    values["images"] = (f"{facts['images']} 幅图像，{facts['series_count']} 个序列" if zh
                        else f"{facts['images']} image{'s' if facts['images'] != 1 else ''} in "
                             f"{facts['series_count']} series")
    if s.get("orientation"):
        orientation = s["orientation"]
        values["orientation"] = _ORIENTATION_ZH.get(orientation, orientation) if zh else orientation
    if s.get("slice_thickness_mm"):
        values["slice_thickness"] = f"{_num(s['slice_thickness_mm'])} mm"
    spacing = s.get("pixel_spacing_mm") or []
    if spacing and all(spacing):
        values["pixel_spacing"] = f"{_num(spacing[0])} mm"
    if s.get("rows") and s.get("columns"):
        values["matrix"] = f"{s['rows']} x {s['columns']}"
    if s.get("extent_mm"):
        values["extent"] = f"{_num(s['extent_mm'], 1)} mm"
    inten = s.get("intensity") or {}
    unit = "HU" if s.get("units") == "HU" else ""
    if inten.get("mean") is not None:
        values["intensity_mean"] = f"{_num(inten['mean'], 1)} {unit}".strip()
    if inten.get("p5") is not None and inten.get("p95") is not None:
        values["intensity_range"] = f"{_num(inten['p5'], 1)} to {_num(inten['p95'], 1)} {unit}".strip()
    for key, fid in _HU_CLASSES:
        share = (s.get("hu_classes") or {}).get(key)
        if share is not None:
            values[fid] = f"{_num(100 * share, 1)}%"
    acq = s.get("acquisition") or {}
    if acq.get("ContrastBolusRoute"):
        values["contrast"] = str(acq["ContrastBolusRoute"])
    if acq.get("KVP"):
        values["tube_voltage"] = f"{_num(acq['KVP'], 0)} kV"
    if acq.get("MagneticFieldStrength"):
        values["field_strength"] = f"{_num(acq['MagneticFieldStrength'], 1)} T"
    if acq.get("RepetitionTime") and acq.get("EchoTime"):
        values["sequence"] = f"TR {_num(acq['RepetitionTime'], 0)} ms, TE {_num(acq['EchoTime'], 0)} ms"
    if acq.get("ViewPosition"):
        values["view_position"] = str(acq["ViewPosition"])
    side = acq.get("ImageLaterality") or acq.get("Laterality")
    if side:
        values["laterality"] = str(side)
    if s.get("burned_in_annotation") == "YES":
        values["burned_in_text"] = "是" if zh else "yes"
    if s.get("color"):
        values["color"] = "RGB"
    return [{"id": fid, "label": _LABELS[fid][1 if zh else 0], "value": values[fid]}
            for fid in FEATURE_IDS if fid in values]


def feature_list(offered: list[dict[str, str]], lang: str = "en") -> str:
    """The prompt's list of citable features, one a line: ``- lung_fraction: the share of ... is 22.8%.``"""
    if lang == "zh-hans":
        return "\n".join(f"- {f['id']}：{f['label']}为 {f['value']}。" for f in offered)
    return "\n".join(f"- {f['id']}: the {f['label']} is {f['value']}." for f in offered)


def draft_sections(answer: dict[str, Any], *, summary: dict[str, Any], lang: str = "en") -> dict[str, Any]:
    """Report sections from a v2 answer: technique and comparison from the headers, each finding's
    evidence the cited feature's label and value (computed, never the model's words)."""
    offered = {f["id"]: f for f in offered_features(summary, lang)}
    findings = []
    for item in answer.get("findings") or []:
        feature = offered.get(item.get("feature", ""))
        evidence = f"{feature['label']}: {feature['value']}" if feature else ""
        findings.append({"location": "", "description": item.get("text", ""), "evidence": evidence})
    limits = ("Drafted from summary statistics of the pixel values and the headers, not from a reading of "
              "the images." if lang != "zh-hans" else "根据像素统计值和头信息起草，并非对图像的阅片。")
    return {"technique": technique_text(summary, lang), "comparison": comparison_text(lang),
            "findings": findings, "impression": answer.get("impression", ""),
            "recommendations": list(answer.get("recommendations") or []), "limitations": limits}
