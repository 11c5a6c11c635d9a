#!/usr/bin/env python3
"""Build an extra training corpus for vidcolor's colorizer, beside the one ../shared/data/train/build.py makes.

Usage:
    python3 corpus/build_extra.py [DEST] [--cache DIR] [--base DIR[,DIR...]] [--sources NAME[,NAME...]]
                                  [--max-side 512]

DEST (default /work/corpus-extra) receives DEST/<source>/<name>.jpg, DEST/manifest.csv (the
columns of build.py's manifest) and DEST/ATTRIBUTION.md.  --base names corpora that are already
built (default /work/corpus): nothing near-identical to a picture in them is kept again, and the
composites take their backgrounds from the first one.  --cache (default /work/corpus-extra-cache)
holds the downloaded .deb files.

Everything build.py does to a package (download by name, extraction, per-file licence from
debian/copyright, the colour/grey/toned/cartoon filters, near-duplicate and near-reserved tests,
resizing, tiles, manifest and attribution) is build.py's own code, imported from it; this script
only lists more sources and adds two kinds of pictures build.py does not make:

- small seamless material textures (grass, bark, stone, brick, sand) repeated to at least
  MIN_LONG pixels ('texture' prep), and
- composites: photographed cut-outs of Tux Paint's stamp collection (animals, fruit, vegetables,
  vehicles, flowers, tools) pasted onto whole photographs of the base corpus, so that the
  colours of many more kinds of objects are seen.  A composite belongs to the scene group
  (original_path) of its background.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import io
import json
import os
import random
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD_PY = os.path.join(HERE, "..", "..", "shared", "data", "train", "build.py")
if not os.path.isfile(BUILD_PY):   # the worktree sits beside shared/ (/work/wt-*/ and /work/shared/)
    BUILD_PY = os.path.join(HERE, "..", "shared", "data", "train", "build.py")


def load_build():
    spec = importlib.util.spec_from_file_location("vidcolor_train_build", BUILD_PY)
    if spec is None or spec.loader is None:
        sys.exit(f"build_extra.py: ERROR: expected build.py at {BUILD_PY}; found nothing there")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


B = load_build()
EXTRA_VERSION = "1"

ETR = "usr/share/games/etr/terrains/"
TORCS = "usr/share/games/torcs/tracks/"
STAMPS = "usr/share/tuxpaint/stamps/"

# Same schema as build.py's SOURCES.  prep 'texture': a seamless texture smaller than the size
# filter is repeated 2x2 (or 3x3) so that it reaches it.
SOURCES = [
    # Extreme Tux Racer terrain textures: photographed grass, dirt, paving, pebbles, rock, sand
    # (256 px).  Left out: the skyboxes (rendered landscapes), course previews (game renders),
    # avatars (128 px), the icy/snowy variants (painted snow blobs) and the flat ice textures.
    dict(name="extremetuxracer-data", version="0.8.2-1",
         licence="GPL-2+ (Debian copyright, Files: *)",
         include=[ETR + n + ".png" for n in
                  ["dirt01", "floor01", "floor02", "grass01", "grass02", "grass03", "pave01",
                   "pave02", "pebbles01", "pebbles04", "pebbles05", "rock", "rock01", "rock02",
                   "rock03", "rock04", "rock05", "rock06", "rock07", "sand01"]],
         strip=ETR, curated=True, tiles=False),
    # TORCS track textures that are photographs: landscape backdrops, barns, walls, roofs,
    # rock faces, brick, grass, straw, planks, a grandstand crowd.  Adverts, logos, curbs and
    # drawn textures are left out by name.
    dict(name="torcs-data", version="1.3.7+dfsg-5",
         licence="GPL-2+ (Debian copyright, Files: *)",
         include=[TORCS + n for n in
                  ["dirt/dirt-2/background.png", "dirt/dirt-2/grass-bw-d2.png",
                   "dirt/dirt-2/house12.png", "dirt/dirt-2/house13.png", "dirt/dirt-2/house15.png",
                   "dirt/dirt-2/pitfacade2.png", "dirt/dirt-2/roof11.png",
                   "dirt/dirt-2/silo1-w.png", "dirt/dirt-2/strawbale-bw.png",
                   "dirt/dirt-2/wall-concrete.png", "dirt/dirt-2/wall11.png",
                   "dirt/dirt-2/wall14-2.png", "dirt/dirt-2/wall14.png",
                   "dirt/dirt-3/background.png", "dirt/dirt-3/barrier-rusty.png",
                   "dirt/dirt-3/bridgeplanks.png", "dirt/dirt-3/dirt-grass.png",
                   "dirt/dirt-3/newgrass.png", "dirt/dirt-3/stone1.png", "dirt/dirt-3/tank.png",
                   "oval/michigan/background.png", "road/alpine-2/cliff.png",
                   "road/alpine-2/concwall.png", "road/alpine-2/rockwall.png",
                   "road/alpine-2/rockwall2.png", "road/brondehach/PALAZB03.png",
                   "road/brondehach/PDKKA07.png", "road/brondehach/TRIBA08.png",
                   "road/brondehach/background.png", "road/corkscrew/grassclf.png",
                   "road/corkscrew/grassct.png", "road/corkscrew/tileroof.png",
                   "road/e-track-2/TOPCROWD.png", "road/e-track-2/background.png",
                   "road/e-track-2/border-grass-end-e2.png",
                   "road/e-track-2/border-gravel-end-e2.png", "road/e-track-2/bordertile.png",
                   "road/e-track-2/conc.png", "road/e-track-2/concrete-wall1.png",
                   "road/e-track-2/grass-bw-d2.png", "road/e-track-2/grass-cut-e2.png",
                   "road/e-track-2/grass-dirt-e2.png", "road/e-track-2/grass-e2.png",
                   "road/e-track-2/grass-end-e2.png", "road/e-track-2/grass-start-e2.png",
                   "road/e-track-2/gravel-e2.png", "road/e-track-2/gravel-end-e2.png",
                   "road/e-track-2/house17elevator.png", "road/e-track-2/house17facade.png",
                   "road/e-track-2/house18facade.png", "road/e-track-2/house20facade.png",
                   "road/e-track-2/house21w1.png", "road/e-track-2/house21w2.png",
                   "road/e-track-2/house22facade.png", "road/e-track-2/house23facade.png",
                   "road/e-track-2/house24brick.png", "road/e-track-2/house24facade.png",
                   "road/e-track-2/house24roof.png", "road/e-track-2/house25facade.png",
                   "road/e-track-2/house25roof.png", "road/e-track-2/house25side.png",
                   "road/e-track-2/house26base.png", "road/e-track-2/house26facade.png",
                   "road/e-track-2/house27facade.png", "road/e-track-2/house27side.png",
                   "road/e-track-2/house28facade.png", "road/e-track-2/house31facade.png",
                   "road/e-track-2/house33facade.png", "road/e-track-2/house33side.png",
                   "road/e-track-2/house34facade.png", "road/e-track-2/house35facade.png",
                   "road/e-track-2/house36facade.png", "road/e-track-2/road-dirt.png",
                   "road/e-track-2/road-e2.png", "road/e-track-2/rock-wall-e2.png",
                   "road/e-track-2/rock1-e2.png", "road/e-track-3/background.png",
                   "road/e-track-3/grass-e3.png", "road/e-track-3/grass-side-e3.png",
                   "road/e-track-4/background.png", "road/e-track-6/GRASS.png",
                   "road/e-track-6/GRASSAND.png", "road/e-track-6/RDGRTRAN.png",
                   "road/e-track-6/TOPCROWD.png", "road/e-track-6/cliff2.png",
                   "road/forza/PITPPL.png", "road/forza/RS_n.png", "road/forza/TOPCROWD.png",
                   "road/forza/treel1_n.png", "road/forza/treel2_n.png", "road/forza/treel3_n.png",
                   "road/g-track-1/background.png", "road/g-track-2/background.png",
                   "road/g-track-3/background.png", "road/ole-road-1/background.png",
                   "road/ole-road-1/ole-concrete-pits.png", "road/ruudskogen/grass01.png",
                   "road/ruudskogen/grass02.png", "road/ruudskogen/lave01.png",
                   "road/ruudskogen/lave02.png", "road/ruudskogen/sand01.png",
                   "road/spring/background.png", "road/street-1/background.png",
                   "road/wheel-1/asphalt-bw-w1-lines-l.png", "road/wheel-1/asphalt-bw-w1.png",
                   "road/wheel-1/background.png", "road/wheel-1/garage3.png",
                   "road/wheel-1/grass-bw-w1.png", "road/wheel-1/house10f.png",
                   "road/wheel-1/rock1-w1.png", "road/wheel-2/background.png",
                   "road/wheel-2/grass.png"]],
         strip=TORCS, tiles=False),
    # FooBillard++: two brick walls, a fire (the other 13 frames of the animation are
    # near-copies) and a city at night.
    dict(name="foobillardplus-data", version="3.43~svn170+dfsg-7",
         licence="GPL-2 (Debian copyright, Files: *)",
         include=["usr/share/games/foobillardplus/data/" + n for n in
                  ["corr1.png", "corr3.png", "fire0.png", "skyline.png"]],
         strip="usr/share/games/foobillardplus/data/", tiles=False),
]

# Tux Paint stamps used as cut-outs: every PNG stamp outside these folders whose opaque part
# has at least STAMP_MIN_COLOURS colours (5-bit) and a longer side of at least STAMP_MIN_SIDE,
# except the drawings below (found by looking at all of them: the rule lets a few through).
# Tux Paint keeps most of its drawn stamps in folders called cartoon/.
STAMP_SKIP_DIRS = ["symbols/", "seasonal/", "space/", "town/flags/", "town/roadsigns/"]
STAMP_DRAWN = ["clothes/button.png", "clothes/hats/feathered_hat.png",
               "clothes/hats/propeller_hat.png", "plants/flowers/yellow-flower.png",
               "food/pizza.png", "people/body_parts/eye.png", "sports/basketball.png",
               "naturalforces/explosion.png", "animals/mammals/hedgehog.png",
               "animals/mammals/aquatic/whale.png", "household/rubberduck.png", "sports/soccer.png",
               "vehicles/emergency/sedan_police.png", "vehicles/ship/chineseJunk.png",
               "vehicles/ship/walnutBoat.png"]
STAMP_MIN_COLOURS = 113
STAMP_MIN_SIDE = 100
COMPOSITE = dict(name="tuxpaint-stamps-default", version="2022.06.04-1",
                 licence="GPL-2 (Debian copyright, Files: *)",
                 copyright="2002-2022 Bill Kendrick and the Tux Paint contributors",
                 per_stamp=2, per_picture=2)


# --------------------------------------------------------------------------------------------
def prep_load(src, root, p, full):
    """build.py's prep steps, plus 'texture' (repeat a small seamless texture)."""
    if src.get("prep") != "texture":
        return _orig_prep_load(src, root, p, full)
    from PIL import Image
    im = Image.open(full)
    im.load()
    w, h = im.size
    n = 1
    while min(w, h) * n < B.MIN_SHORT or max(w, h) * n < B.MIN_LONG:
        n += 1
    if n == 1:
        return open(full, "rb").read()
    out = Image.new(im.mode, (w * n, h * n))
    for i in range(n):
        for j in range(n):
            out.paste(im, (i * w, j * h))
    return out


_orig_prep_load = B.prep_load
B.prep_load = prep_load   # build.py's candidates() looks prep_load up in its module


def hashes_of_folder(folder, max_side):
    """(dhash, thumb) of every JPEG a manifest.csv in folder lists."""
    out = []
    man = os.path.join(folder, "manifest.csv")
    if not os.path.isfile(man):
        B.die(f"--base {folder}: expected a built corpus with manifest.csv; found none")
    with open(man, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            im, _ = B.load_image(open(os.path.join(folder, r["file"]), "rb").read())
            out.append(B.dhash(im.convert("RGB")))
    return out


def eval_hashes(max_side):
    """(dhash, thumb) of the evaluation pictures themselves (../shared/data/eval/images, bw/)."""
    base = os.path.join(os.path.dirname(BUILD_PY), "..", "eval")
    out = []
    for sub in ("images", "bw"):
        d = os.path.join(base, sub)
        for fn in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if not fn.lower().endswith((".jpg", ".jpeg", ".png")):
                continue
            try:
                im, _ = B.load_image(open(os.path.join(d, fn), "rb").read(), (4 * max_side,) * 2)
            except Exception:
                continue
            out.append(B.dhash(im.convert("RGB")))
    return out


# --------------------------------------------------------------------------------------------
# composites
# --------------------------------------------------------------------------------------------
def stamp_list(root):
    """Sorted [(path in package, RGBA image)] of the photographed stamps."""
    import numpy as np
    from PIL import Image
    out = []
    seen = set()
    for dirpath, _dirs, files in os.walk(os.path.join(root, STAMPS)):
        for fn in files:
            if not fn.endswith(".png"):
                continue
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, os.path.join(root, STAMPS))
            if any(rel.startswith(d) for d in STAMP_SKIP_DIRS) or rel in STAMP_DRAWN \
                    or "cartoon" in rel.split("/"):
                continue
            if "_mirror" in fn:
                continue
            im = Image.open(full).convert("RGBA")
            if max(im.size) < STAMP_MIN_SIDE:
                continue
            a = np.asarray(im)
            px = a[..., :3][a[..., 3] > 250]
            if len(px) < 100:
                continue
            q = (px >> 3).astype(np.int32)
            key = (q[:, 0] << 10) | (q[:, 1] << 5) | q[:, 2]
            ncol = int((np.bincount(key, minlength=32768) > 0).sum())
            if ncol < STAMP_MIN_COLOURS:
                continue
            sig = (im.size, ncol)   # the same photo shipped twice (mirrored tanks, astronauts)
            if sig in seen:
                continue
            seen.add(sig)
            out.append((STAMPS + rel, im))
    out.sort(key=lambda t: t[0])
    return out


def build_composites(args, corpus, paths, base_dir):
    """Paste the stamps onto whole photos of the base corpus; return a build.py-style state."""
    import numpy as np
    from PIL import Image, ImageFilter
    c = COMPOSITE
    name = "composite-" + c["name"]
    outdir = os.path.join(args.dest, name)
    state_fn = os.path.join(args.dest, ".state", name + ".json")
    deb, actual = B.apt_download(c["name"], c["version"], paths["debs"])
    bg_rows = []
    with open(os.path.join(base_dir, "manifest.csv"), newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["derivation"] == "full" and min(int(r["width"]), int(r["height"])) >= 300:
                bg_rows.append(r)
    bg_rows.sort(key=lambda r: r["file"])
    key = B.sha256_bytes(json.dumps([EXTRA_VERSION, c, STAMP_SKIP_DIRS, STAMP_DRAWN,
                                     STAMP_MIN_COLOURS, STAMP_MIN_SIDE, args.max_side,
                                     [r["file"] for r in bg_rows], actual,
                                     B.pil_version()]).encode())
    if os.path.isfile(state_fn):
        st = json.load(open(state_fn))
        if st.get("key") == key and all(os.path.isfile(os.path.join(args.dest, r["file"]))
                                        for r in st["rows"]):
            B.log(f"{name:28s} up to date: {len(st['rows'])} images (skipped)")
            return st
    t0 = time.time()
    root = os.path.join(paths["extract"], f"{c['name']}_{B.safe_name(actual)}")
    want_docs = f"usr/share/doc/{c['name']}/copyright"
    B.extract_members(deb, root, lambda p: (p.startswith(STAMPS) and p.endswith(".png"))
                      or p == want_docs, "stamps-png")
    stamps = stamp_list(root)
    if os.path.isdir(outdir):
        shutil.rmtree(outdir)
    os.makedirs(outdir)
    # each stamp appears per_stamp times, per_picture stamps to a picture, in a fixed shuffle
    order = [s for _ in range(c["per_stamp"]) for s in range(len(stamps))]
    rng = random.Random(20261205)
    rng.shuffle(order)
    rows, stats = [], {}
    for k in range(0, len(order) - c["per_picture"] + 1, c["per_picture"]):
        picks = order[k:k + c["per_picture"]]
        if len(set(picks)) < len(picks):
            picks = sorted(set(picks))
        seed = B.sha256_bytes("|".join(stamps[i][0] for i in picks).encode() + str(k).encode())
        r = random.Random(int(seed[:16], 16))
        bg = bg_rows[r.randrange(len(bg_rows))]
        canvas = Image.open(os.path.join(base_dir, bg["file"])).convert("RGB")
        canvas = B.fit(canvas, args.max_side)
        W, H = canvas.size
        parts = []
        for i in picks:
            spath, sim = stamps[i]
            sim = sim.crop(sim.getbbox() or (0, 0, *sim.size))
            target = r.uniform(0.35, 0.6) * min(W, H) * (1.0 if len(picks) == 1 else 0.9)
            s = min(target / max(sim.size), 1.6)      # never blow a small stamp up much
            sw, sh = max(1, round(sim.size[0] * s)), max(1, round(sim.size[1] * s))
            st_im = sim.resize((sw, sh), Image.LANCZOS)
            flip = r.random() < 0.5
            if flip:
                st_im = st_im.transpose(Image.FLIP_LEFT_RIGHT)
            x = r.randint(-sw // 8, max(-sw // 8, W - sw + sw // 8))
            y = r.randint(max(0, H // 6 - sh // 4), max(0, H - sh + sh // 10))
            alpha = st_im.getchannel("A").filter(ImageFilter.GaussianBlur(0.6))
            canvas.paste(st_im.convert("RGB"), (x, y), alpha)
            parts.append(f"{spath} x{s:.2f}{' flipped' if flip else ''} at {x},{y}")
        reason, _st = B.judge(canvas)
        hsh, thumb = B.dhash(canvas)
        if reason:
            stats[reason] = stats.get(reason, 0) + 1
            continue
        if corpus.near_reserved(hsh, thumb):
            stats["near-reserved"] = stats.get("near-reserved", 0) + 1
            continue
        stems = "+".join(os.path.splitext(os.path.basename(stamps[i][0]))[0] for i in picks)
        stem = B.safe_name(f"{stems}_on_{os.path.splitext(os.path.basename(bg['file']))[0]}")
        fn = os.path.join(outdir, stem + ".jpg")
        B.save_jpeg(canvas, fn)
        rows.append(dict(
            file=f"{name}/{stem}.jpg",
            source_package=f"{c['name']};{bg['source_package']}",
            package_version=f"{actual};{bg['package_version']}",
            licence=f"stamps: {c['licence']}; background: {bg['licence']}",
            original_path=bg["original_path"], width=W, height=H,
            copyright=f"stamps: {c['copyright']}; background: {bg['copyright']}",
            derivation="composite: " + "; ".join(parts) + f" on background {bg['file']} "
                       f"({bg['derivation']})",
            source_note=f"background: {bg['source_note']}" if bg["source_note"] else ""))
    shutil.rmtree(root, ignore_errors=True)
    size = sum(os.path.getsize(os.path.join(args.dest, r["file"])) for r in rows)
    dropped = ", ".join(f"{k} {v}" for k, v in sorted(stats.items()))
    B.log(f"{name:28s} {actual:28s} kept {len(rows):4d} composites of {len(stamps)} stamps on "
          f"{len(bg_rows)} backgrounds, {size / 1e6:6.1f} MB, {time.time() - t0:5.1f} s"
          + (f"; dropped: {dropped}" if dropped else ""))
    st = dict(key=key, version=actual, rows=rows, hashes=[], guard=[], stats=stats,
              candidates=len(order) // c["per_picture"], rejected=[],
              stamps=[s[0] for s in stamps])
    os.makedirs(os.path.dirname(state_fn), exist_ok=True)
    json.dump(st, open(state_fn + ".part", "w"))
    os.replace(state_fn + ".part", state_fn)
    return st


# --------------------------------------------------------------------------------------------
ATTR_INTRO = [
    "# Attribution", "",
    "Every image in this folder was cut from a file shipped in a Debian package (Debian main: all",
    "of it free to redistribute). Images were resized, some were cropped into tiles, small seamless",
    "textures were repeated 2x2, and the `composite-*` pictures are photographed cut-outs (Tux",
    "Paint stamps) pasted onto photographs of the base corpus (both sources are named on each",
    "line). Licences are those the package's `debian/copyright` gives for the original file (the",
    "Debian copyright files hold the full licence texts).", ""]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", nargs="?", default="/work/corpus-extra")
    ap.add_argument("--cache", default="/work/corpus-extra-cache")
    ap.add_argument("--base", default="/work/corpus",
                    help="comma-separated built corpora to dedupe against (first: backgrounds)")
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--sources", default=None, help="comma-separated source names: DEST holds exactly these (default: all)")
    args = ap.parse_args()
    B.ensure_deps()
    args.dest = os.path.abspath(args.dest)
    os.makedirs(args.dest, exist_ok=True)
    paths = {"debs": os.path.join(args.cache, "debs"), "extract": os.path.join(args.cache, "extract")}
    names = [s["name"] for s in SOURCES] + ["composite-" + COMPOSITE["name"]]
    only = set(args.sources.split(",")) if args.sources else set(names)
    if not only <= set(names):
        B.die(f"unknown source(s) in --sources: {', '.join(sorted(only - set(names)))}; "
              f"known: {', '.join(names)}")
    bases = [os.path.abspath(b) for b in args.base.split(",") if b]
    t0 = time.time()
    reserved, used = B.read_reserved(os.path.dirname(BUILD_PY))
    B.log(f"vidcolor extra corpus -> {args.dest} (bases {', '.join(bases)}; "
          f"reserved: {sum(len(v) for v in reserved.values())} files)")
    corpus = B.Corpus()
    guard_args = argparse.Namespace(dest=args.dest, max_side=args.max_side)
    corpus.guard.extend(B.reserved_guard(guard_args, reserved, paths))
    corpus.guard.extend(eval_hashes(args.max_side))
    for b in bases:
        corpus.hashes.extend(hashes_of_folder(b, args.max_side))
    B.log(f"guard: {len(corpus.guard)} reserved pictures; {len(corpus.hashes)} pictures in the bases "
          f"({time.time() - t0:.0f} s)")
    states, prev = {}, EXTRA_VERSION
    for src in SOURCES:
        if src["name"] not in only:
            continue
        prev, st = B.process_source(src, args, reserved, corpus, prev, paths)
        states[src["name"]] = st
    cname = "composite-" + COMPOSITE["name"]
    if cname in only:
        states[cname] = build_composites(args, corpus, paths, bases[0])
    # folders of sources not built this time
    for d in sorted(os.listdir(args.dest)):
        if os.path.isdir(os.path.join(args.dest, d)) and not d.startswith(".") and d not in states:
            shutil.rmtree(os.path.join(args.dest, d))
            B.log(f"removed folder of a source not built: {d}/")
    rows = B.write_outputs(args.dest, states, used)
    attr = os.path.join(args.dest, "ATTRIBUTION.md")
    text = open(attr, encoding="utf-8").read().split("\n")
    k = next(i for i, line in enumerate(text) if line.startswith("Files reserved") or line.startswith("## "))
    with open(attr + ".part", "w", encoding="utf-8") as f:
        f.write("\n".join(ATTR_INTRO + text[k:]))
    os.replace(attr + ".part", attr)
    total = sum(os.path.getsize(os.path.join(args.dest, r["file"])) for r in rows)
    groups = len({r["original_path"] for r in rows})
    B.log(f"TOTAL: {len(rows)} images ({groups} scene groups) from {len(states)} sources, "
          f"{total / 1e6:.1f} MB, {time.time() - t0:.0f} s -> {os.path.join(args.dest, 'manifest.csv')}")


if __name__ == "__main__":
    main()
