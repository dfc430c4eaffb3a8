"""Errors a user can act on. Each message names the offending file or value and says how to fix it.

The pipeline records the class name (e.g. ``NoPersonError``) and the message in the person's manifest, so
``dinar status`` shows *what* went wrong and *what to do* without a traceback.
"""

from __future__ import annotations


class DinarError(Exception):
    """Base class of the errors that come from the user's input or setup, not from a bug.

    These are never retried (retrying cannot fix a bad photo or a missing model file).
    """

    def __init__(self, message: str, fix: str | None = None):
        self.fix = fix
        super().__init__(f"{message} -- fix: {fix}" if fix else message)


class InvalidImageError(DinarError):
    """The file is not an image that can be decoded (empty, truncated, wrong content for its extension)."""


class DecoderCrashedError(InvalidImageError):
    """The isolated decoder process died on the file (killed by a signal such as SIGSEGV, or it exited without an
    answer): a damaged or crafted image. Only that photo is lost; the pipeline process is unharmed."""


class DecodeTimeoutError(InvalidImageError):
    """The isolated decoder did not finish within ``ingest.decode_timeout`` seconds and was killed."""


class ImageTooSmallError(DinarError):
    """The image is below the minimum size to find a body in."""


class ImageTooLargeError(DinarError):
    """The image header declares more pixels than the decompression-bomb limit."""


class NoPersonError(DinarError):
    """No person was found in the image."""


class KeypointsError(DinarError):
    """Keypoints are missing or unusable (no torso, all confidences zero, NaN)."""


class MissingModelError(DinarError):
    """A model file that the chosen backend needs is not where the config says."""


class CheckpointError(DinarError):
    """A checkpoint file is not the expected kind, is truncated, or does not match the model."""


class MotionError(DinarError):
    """A motion file has the wrong joint count, NaNs or no frames."""


class UnsafeFileError(DinarError):
    """The file asks to build an object that a data file of its kind never holds (unpickling it could run code, or
    needs a library such as chumpy); nothing from it was loaded."""


class FileLimitError(DinarError):
    """The file, or what it decompresses or unpickles to, exceeds a size limit (a zip or pickle bomb, nesting too
    deep, too many frames), checked before the memory is spent."""


class UnsafeMotionError(MotionError, UnsafeFileError):
    """A motion file that would build objects a motion never holds (code, foreign classes)."""


class MotionLimitError(MotionError, FileLimitError):
    """A motion file over a size limit (file, archive members, arrays, frames, nesting)."""


class NotACheckpointError(CheckpointError):
    """The file is not a PyTorch checkpoint at all (an HTML download page, an image, a NumPy file ...)."""


class TruncatedCheckpointError(CheckpointError):
    """The file starts like a PyTorch checkpoint but is cut short or corrupted (an interrupted download)."""


class UnsupportedCheckpointObjectError(CheckpointError):
    """The checkpoint holds a Python object that safe (weights-only) loading refuses to build."""


class UnsafeCheckpointError(UnsupportedCheckpointObjectError, UnsafeFileError):
    """The checkpoint wants to call code (a function such as ``os.system``, or a module weights-only loading
    blocks): it is not DINAR's checkpoint and must not be used."""


class CheckpointLimitError(CheckpointError, FileLimitError):
    """A checkpoint archive whose members declare more bytes than the file can hold (a zip bomb)."""


class NotDinarCheckpointError(CheckpointError):
    """A readable PyTorch checkpoint, but not one of DINAR's (no DINAR model keys in its state_dict)."""


class CheckpointMismatchError(CheckpointError):
    """A DINAR checkpoint whose keys or shapes do not match the configured model (lists every difference)."""


class MaskError(DinarError):
    """A user-supplied mask is missing, unreadable, or does not match its photo."""


class WrongModelFileError(MissingModelError):
    """A model file is where the config says, but it is not the expected kind (not a pickle/npz, an SMPL or SMPL-H
    file where SMPL-X is needed, arrays missing or of the wrong shape)."""


class UnsafeModelFileError(WrongModelFileError, UnsafeFileError):
    """A model file that would build objects a model file never holds (code; chumpy objects of old SMPL-X pickles,
    which must be converted to plain arrays first)."""


class ModelFileLimitError(WrongModelFileError, FileLimitError):
    """A model file over a size limit (file, archive members, arrays, nesting)."""


class MissingCheckpointError(CheckpointError, MissingModelError):
    """No checkpoint was given, or the given path does not exist (DINAR's ddpm-epoch=24.ckpt is user-supplied)."""


class DatasetError(DinarError):
    """A prepared DINAR dataset folder (rgb/, segm/, smplx/) is missing files or holds none."""


class CalibrationError(DinarError):
    """A camera calibration file (Qualisys .qca.txt, OpenCV/Pose2Sim TOML, cameras.json) cannot be used: unreadable
    or truncated, a value that is not a number, a matrix that is not a rotation, or a camera that is missing on one
    side (a video without a calibration entry, or a calibrated camera without a video)."""


class MissingCameraError(CalibrationError):
    """A camera is named on one side only: views/videos without a calibration entry, or calibration entries that
    were asked for but have no view."""


class NotARotationError(CalibrationError):
    """A calibration's rotation matrix is not orthonormal with determinant +1."""


class MultiViewDataError(DinarError):
    """A multi-view dataset folder (dataset.json, <person>/views/, <person>/cameras.json) is missing files or holds
    an inconsistent layout."""


class EvalDataError(MultiViewDataError):
    """A person or one of its views cannot be evaluated: the source view is not one of its cameras, no view shows
    a torso, the person is absent from a view, a view's size differs from its calibration, or ground truth that a
    measurement needs is missing. Recorded for that person or view; the others are evaluated."""


class UnsafeWorkspaceError(DinarError):
    """A person workspace under the runs folder is (or holds) a symbolic link: writing or cleaning there could touch
    files outside the runs folder, so the person is refused."""


class RunsBusyError(DinarError):
    """Another run holds the runs folder's lock (``RUNS/.dinar.lock``): two runs on one folder would redo and
    overwrite each other's work."""


class TrainingDataError(DinarError):
    """A training set cannot be used: no persons, a file that is not a texture set, single-view persons for a phase
    that needs several views, or persons of different UV layouts or sizes."""


class TrainingCheckpointError(CheckpointError):
    """A checkpoint given to `dinar train` is of another phase or UV layout, or does not fit the configured sizes."""


class BlenderError(DinarError):
    """Blender (a development tool that checks exported GLBs) is missing, or its import of a file failed."""


class UploadRefusedError(DinarError):
    """An upload the web app does not take: too many files, a file too large, or a file that is not an image."""
