"""Looking at a trained model: evaluation, prediction, plots, the feature space, Grad-CAM, saliency."""
