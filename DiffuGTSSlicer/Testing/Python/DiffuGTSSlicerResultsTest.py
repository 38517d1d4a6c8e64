"""Inside Slicer: results written like the engine's are loaded as editable segments on the input's grid, with
names, colors and Mass/Neoplasm terminology, heat maps with their color table, and nothing overwritten."""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from DiffuGTSSlicerLib import scene_io
from DiffuGTSSlicerLib.parameters import Parameters
from DiffuGTSSlicerLib.results import load_results

PROMPTS = ["kidney tumor", "liver lesion"]


class DiffuGTSSlicerResultsTest(ScriptedLoadableModuleTest):
    def setUp(self):
        slicer.mrmlScene.Clear()
        self.folder = Path(tempfile.mkdtemp(prefix="diffugts-test-"))
        self.volume = slicer.util.addVolumeFromArray(np.zeros((6, 9, 11), np.int16), name="oblique")
        matrix = vtk.vtkMatrix4x4()
        for row, values in enumerate(([0.7, -0.6, 0, 12], [0.5, 1.0, 0, -40], [0, 0, 2.5, 7])):
            for column, value in enumerate(values):
                matrix.SetElement(row, column, value)
        self.volume.SetIJKToRASMatrix(matrix)
        self.masks = [np.zeros((6, 9, 11), bool), np.zeros((6, 9, 11), bool)]
        self.masks[0][1:4, 2:5, 3:9] = True
        self.masks[1][4:6, 6:9, 0:2] = True
        self._write_engine_like_outputs()

    def tearDown(self):
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write_engine_like_outputs(self):
        source = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        source.SetReferenceImageGeometryParameterFromVolumeNode(self.volume)
        for name, mask in zip(PROMPTS, self.masks):
            segment_id = source.GetSegmentation().AddEmptySegment(name)
            slicer.util.updateSegmentBinaryLabelmapFromArray(mask.astype(np.uint8), source, segment_id, self.volume)
        scene_io.write_segmentation(source, self.folder / "segmentation.seg.nrrd")
        slicer.mrmlScene.RemoveNode(source)
        heat = slicer.util.addVolumeFromArray(np.full((6, 9, 11), 0.5, np.float32), name="heat")
        heat.CopyOrientation(self.volume)
        scene_io.export_volume(heat, self.folder / "attention_1.nii.gz")
        slicer.mrmlScene.RemoveNode(heat)
        (self.folder / "report.json").write_text(json.dumps({"prompts": [{"presence": 0.9}, {"presence": 0.2}]}))

    def test_segments_on_input_grid_with_terminology(self):
        loaded = load_results(self.folder, self.volume, Parameters(prompts=PROMPTS))
        segmentation = loaded.segmentation_node.GetSegmentation()
        self.assertEqual(segmentation.GetNumberOfSegments(), 2)
        for row, mask in zip(loaded.rows, self.masks):
            array = slicer.util.arrayFromSegmentBinaryLabelmap(loaded.segmentation_node, row.segment_id, self.volume)
            np.testing.assert_array_equal(array > 0, mask)
        kidney = segmentation.GetSegment(loaded.rows[0].segment_id)
        tag = vtk.reference("")
        kidney.GetTag(kidney.GetTerminologyEntryTagName(), tag)
        self.assertIn("SCT^108369006^Neoplasm", str(tag))
        self.assertEqual([row.presence for row in loaded.rows], [0.9, 0.2])
        self.assertIn("attention_1", loaded.volumes)
        again = load_results(self.folder, self.volume, Parameters(prompts=PROMPTS), loaded.segmentation_node)
        self.assertEqual(segmentation.GetNumberOfSegments(), 4)
        self.assertEqual(segmentation.GetSegment(again.rows[0].segment_id).GetName(), "kidney tumor (2)")
