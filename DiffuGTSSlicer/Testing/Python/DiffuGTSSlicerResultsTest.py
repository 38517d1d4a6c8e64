"""Inside Slicer: results written like the engine's (report.json of its schema) are loaded as editable segments on the input's grid, with
names, colors and Mass/Neoplasm terminology, heat maps with their color table, and nothing overwritten."""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import slicer
import vtk
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from diffugts.terminology import describe_all
from DiffuGTSSlicerLib import scene_io
from DiffuGTSSlicerLib.parameters import Parameters
from DiffuGTSSlicerLib.results import REPORT_SCHEMA, load_results

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
        for description, mask in zip(describe_all(PROMPTS), self.masks):  # named, colored and coded as the engine does
            segment_id = source.GetSegmentation().AddEmptySegment(description.name, description.name,
                                                                  description.color)
            segment = source.GetSegmentation().GetSegment(segment_id)
            segment.SetTag(segment.GetTerminologyEntryTagName(), description.terminology)
            slicer.util.updateSegmentBinaryLabelmapFromArray(mask.astype(np.uint8), source, segment_id, self.volume)
        scene_io.write_segmentation(source, self.folder / "segmentation.seg.nrrd")
        slicer.mrmlScene.RemoveNode(source)
        heat = slicer.util.addVolumeFromArray(np.full((6, 9, 11), 0.5, np.float32), name="heat")
        heat.CopyOrientation(self.volume)
        scene_io.export_volume(heat, self.folder / "attention_1.nii.gz")
        slicer.mrmlScene.RemoveNode(heat)
        prompts = [{"prompt": name, "segment": name, "label": n, "presence": presence, "volume_ml": 0.1,
                    "files": {"attention": f"attention_{n}.nii.gz"}}
                   for n, (name, presence) in enumerate(zip(PROMPTS, (0.9, 0.2)), start=1)]
        report = {"schema": REPORT_SCHEMA, "prompts": prompts, "warnings": [],
                  "outputs": {"segmentation": "segmentation.seg.nrrd"}}
        (self.folder / "report.json").write_text(json.dumps(report))

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
