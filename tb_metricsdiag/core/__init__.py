"""The numeric core: counting, metrics, labels, operating points, overlap. Pure NumPy; imports
nothing else of the package.
"""
