"""Model graphs: GraphDefs read into nodes and edges, readable views (scopes, search, DOT), the layers table."""
from twinboard.graphs.layers import align_layers, layer_summary, read_settings, shapes_agree, style_layers
from twinboard.graphs.reader import default_graph, Graph, GraphScanner, read_graphs
from twinboard.graphs.view import collapse, find_nodes, forward_only, group_of, node_details, scopes, to_dot
