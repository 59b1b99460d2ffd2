"""Each plugin's work done directly with its own library: the floor the bench compares the plugin with."""
