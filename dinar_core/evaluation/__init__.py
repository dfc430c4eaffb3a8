"""Measuring avatar quality: image metrics inside the person mask (torchmetrics), the multi-view protocol's
geometry (placing an avatar made in one camera into another, view angles and their buckets) and body errors."""

from dinar_core.evaluation.metrics import ImageScores, masked_image_scores, mask_iou
from dinar_core.evaluation.protocol import (BUCKETS, bucket_of, camera_centre, depth_scale, frontal_score,
                                            recentre_intrinsics, relative_transform, transform_points,
                                            triangulate_points, view_angle_deg)

__all__ = ["ImageScores", "masked_image_scores", "mask_iou", "BUCKETS", "bucket_of", "camera_centre",
           "depth_scale", "frontal_score", "recentre_intrinsics", "relative_transform", "transform_points",
           "triangulate_points", "view_angle_deg"]
