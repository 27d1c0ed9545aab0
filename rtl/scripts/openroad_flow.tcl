# OpenROAD: floorplan, placement and global routing of one synthesized unit, then its post-route
# area and power. Run by rtl/src/flow.rs only where `openroad` is on PATH (Debian 12 has no
# OpenROAD package); elsewhere the report says "not run: openroad not installed".
#
# The caller prepends the settings: qb_lef (technology + cell LEF), qb_liberty, qb_netlist, qb_top,
# qb_clock, qb_period_ns, qb_site (LEF site name, `core` for OSU 0.18 um) and qb_utilization
# (percent). Results are printed as `QBENCH <key> <values>` lines.
read_lef $qb_lef
read_liberty $qb_liberty
read_verilog $qb_netlist
link_design $qb_top
create_clock -name qb_clk -period $qb_period_ns [get_ports $qb_clock]
initialize_floorplan -utilization $qb_utilization -aspect_ratio 1.0 -core_space 10 -site $qb_site
make_tracks
place_pins -hor_layers metal3 -ver_layers metal2
global_placement -density 0.6
detailed_placement
check_placement
global_route
estimate_parasitics -global_routing
set qb_block [ord::get_db_block]
set qb_area 0.0
foreach qb_inst [$qb_block getInsts] {
  set qb_master [$qb_inst getMaster]
  set qb_area [expr {$qb_area + [ord::dbu_to_microns [$qb_master getWidth]] * [ord::dbu_to_microns [$qb_master getHeight]]}]
}
set qb_die [$qb_block getDieArea]
puts "QBENCH area [expr {$qb_area}] [expr {[ord::dbu_to_microns [$qb_die dx]] * [ord::dbu_to_microns [$qb_die dy]]}]"
set_power_activity -input -activity 0.5 -duty 0.5
puts "QBENCH power [lrange [sta::design_power [sta::cmd_corner]] 0 3]"
