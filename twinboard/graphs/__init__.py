"""Model graphs: GraphDefs read into nodes and edges, readable views (scopes, search, DOT), a layered
layout drawn as a plotly figure, the layers table."""
from twinboard.graphs.layers import align_layers, layer_summary, read_settings, shapes_agree, style_layers
from twinboard.graphs.model import Graph
from twinboard.graphs.reader import default_graph, GraphScanner, read_graphs
from twinboard.graphs.view import collapse, find_nodes, forward_only, group_of, node_details, scopes, to_dot
from twinboard.graphs.layout import Layout, layered_layout
from twinboard.graphs.figure import NODES_TRACE, clicked_scope, focus_nodes, graph_figure
