# OpenSTA: worst setup path and vectorless power of one synthesized unit.
#
# The caller (rtl/src/sta.rs) prepends the settings: qb_liberty, qb_netlist, qb_top, qb_clock
# (clock port), qb_period_ns, qb_in_activity (toggles per clock cycle on every data input) and
# qb_in_duty. Results are printed as `QBENCH <key> <values>` lines, in SI units (seconds, watts).
read_liberty $qb_liberty
read_verilog $qb_netlist
link_design $qb_top
create_clock -name qb_clk -period $qb_period_ns [get_ports $qb_clock]
# Every unit registers its inputs and outputs: with zero I/O delays the worst path is the
# register-to-register one, and the fastest clock met is the period minus its slack.
set qb_data_inputs [delete_from_list [all_inputs] [get_ports $qb_clock]]
set_input_delay 0 -clock qb_clk $qb_data_inputs
set_output_delay 0 -clock qb_clk [all_outputs]
set qb_paths [find_timing_paths -path_delay max]
if {[llength $qb_paths] == 0} {
  puts "QBENCH no_paths"
} else {
  set qb_path [lindex $qb_paths 0]
  puts "QBENCH timing [$qb_path data_arrival_time] [$qb_path data_required_time] [$qb_path slack] [$qb_path margin]"
  puts "QBENCH startpoint [get_full_name [get_property $qb_path startpoint]]"
  puts "QBENCH endpoint [get_full_name [get_property $qb_path endpoint]]"
}
# Vectorless: OpenSTA propagates the input activity through the cells' functions.
set_power_activity -input -activity $qb_in_activity -duty $qb_in_duty
puts "QBENCH power [lrange [sta::design_power [sta::cmd_corner]] 0 3]"
