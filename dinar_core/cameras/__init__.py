"""Calibrated cameras: the multi-view dataset contract (`multiview`), calibration readers (`calibration`: Qualisys
.qca.txt, OpenCV/Pose2Sim TOML) and image undistortion. numpy/OpenCV only."""

from dinar_core.cameras.multiview import (
    Camera,
    CameraSet,
    DatasetInfo,
    list_persons,
    read_cameras,
    read_dataset,
    view_paths,
    write_cameras,
    write_dataset,
)

__all__ = ["Camera", "CameraSet", "DatasetInfo", "list_persons", "read_cameras", "read_dataset", "view_paths",
           "write_cameras", "write_dataset"]
