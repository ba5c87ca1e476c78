"""The reference pipeline timed by bench_tensors.py: nlb_tools load + resample + the three tensor files."""

import logging
import sys
import warnings

from nlb_tools.make_tensors import make_eval_input_tensors, make_eval_target_tensors, make_train_input_tensors
from nlb_tools.nwb_interface import NWBDataset

logging.disable(logging.WARNING)
warnings.simplefilter("ignore")

folder, name, bin_ms, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ds = NWBDataset(folder)
ds.resample(bin_ms)
make_train_input_tensors(ds, name, "train", save_path=f"{out}/train_input.h5", include_behavior=True,
                         include_forward_pred=True)
make_eval_input_tensors(ds, name, "val", save_path=f"{out}/eval_input.h5")
make_eval_target_tensors(ds, name, "train", "val", save_path=f"{out}/target_data.h5", include_psth=True)
